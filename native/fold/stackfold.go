package fold

import "slices"

const (
	m1     = 0xBF58476D1CE4E5B9
	m2     = 0x94D049BB133111EB
	golden = 0x9E3779B97F4A7C15
)

// mix is splitmix64's finaliser (proftask/core/node_table.py _mix).
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= m1
	x ^= x >> 27
	x *= m2
	return x ^ (x >> 31)
}

// pathHash names a path by its parent path's hash and its last frame id (node_table.path_hash).
func pathHash(parent, frame uint64) uint64 {
	return mix(mix(parent+golden) ^ frame)
}

// stackFold is node_table.StackFold: the sample-type-independent part of folding a profile's
// stacks at one granularity. Nodes are in the order of their hashes, each described by its
// first occurrence.
type stackFold struct {
	offsets []int64
	frames  []uint64
	posNode []int32 // node of each position
	node    []uint64
	parent  []uint64
	depth   []int64
	frameID []uint64
	// functions: each distinct frame in order of its id, and of each position its function
	fnFrame []uint64
	posFn   []int32
}

// newStackFold folds the stacks (offsets into frames, the frame ids at this granularity;
// frameIndex: each position's frame among the profile's frames, whose ids are frameIDs).
//
// Nodes are found without hashing every position into a sorted table: with the stacks in
// lexicographic order, a path a stack shares with any earlier stack it shares with the one
// just before it, so each stack makes new nodes only past its common prefix with that one.
// The nodes come out in that order (the Python fold sorts them by hash; a node's values do not
// depend on where it is).
func newStackFold(offsets []int64, frames []uint64, frameIndex []int32, frameIDs []uint64) *stackFold {
	sf := &stackFold{offsets: offsets, frames: frames}
	nPos := len(frames)
	nStacks := len(offsets) - 1
	stack := func(s int) []uint64 { return frames[offsets[s]:offsets[s+1]] }
	order := make([]int, nStacks)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return slices.Compare(stack(a), stack(b)) })
	sf.posNode = make([]int32, nPos)
	sf.node = make([]uint64, 0, nPos)
	sf.parent = make([]uint64, 0, nPos)
	sf.depth = make([]int64, 0, nPos)
	sf.frameID = make([]uint64, 0, nPos)
	var previous []uint64
	previousAt := int64(0)
	for _, s := range order {
		current := stack(s)
		shared := 0
		for shared < len(current) && shared < len(previous) && current[shared] == previous[shared] {
			shared++
		}
		at := offsets[s]
		copy(sf.posNode[at:at+int64(shared)], sf.posNode[previousAt:previousAt+int64(shared)])
		parent := uint64(0)
		if shared > 0 {
			parent = sf.node[sf.posNode[at+int64(shared)-1]]
		}
		for d := shared; d < len(current); d++ {
			node := pathHash(parent, current[d])
			sf.posNode[at+int64(d)] = int32(len(sf.node))
			sf.node = append(sf.node, node)
			sf.parent = append(sf.parent, parent)
			sf.depth = append(sf.depth, int64(d+1))
			sf.frameID = append(sf.frameID, current[d])
			parent = node
		}
		previous, previousAt = current, at
	}
	// functions: the frames' distinct ids at this granularity, in order
	dense := make(map[uint64]int32, len(frameIDs))
	for _, id := range frameIDs {
		dense[id] = 0
	}
	sf.fnFrame = make([]uint64, 0, len(dense))
	for id := range dense {
		sf.fnFrame = append(sf.fnFrame, id)
	}
	slices.Sort(sf.fnFrame)
	for i, id := range sf.fnFrame {
		dense[id] = int32(i)
	}
	fnOf := make([]int32, len(frameIDs))
	for i, id := range frameIDs {
		fnOf[i] = dense[id]
	}
	sf.posFn = make([]int32, nPos)
	for pos, f := range frameIndex {
		sf.posFn[pos] = fnOf[f]
	}
	return sf
}

// sortedPaths are the nodes' paths (node, parent, depth, frame) in the order of their hashes,
// as the Python fold has them: the writer looks them up in its sorted memory of the nodes it
// wrote, ~8x faster for sorted queries. (The parts keep the stacks' order: nothing reads them
// in order.)
func (sf *stackFold) sortedPaths() (node, parent []uint64, depth []uint32, frameID []uint64) {
	byHash := make([]keyed, len(sf.node))
	for i, h := range sf.node {
		byHash[i] = keyed{h, int32(i)}
	}
	byHash = sortKeyed(byHash)
	node, parent = make([]uint64, len(sf.node)), make([]uint64, len(sf.node))
	depth, frameID = make([]uint32, len(sf.node)), make([]uint64, len(sf.node))
	for to, k := range byHash {
		node[to], parent[to], depth[to], frameID[to] = k.key, sf.parent[k.at], uint32(sf.depth[k.at]), sf.frameID[k.at]
	}
	return node, parent, depth, frameID
}

// nodes is StackFold.nodes: the root, then every node some stack with a non-zero value makes.
func (sf *stackFold) nodes(values []int64) Part {
	n := len(sf.node)
	total := make([]int64, n)
	self := make([]int64, n)
	present := make([]bool, n)
	var rootTotal, rootSelf int64
	for s, v := range values {
		rootTotal += v
		lo, hi := sf.offsets[s], sf.offsets[s+1]
		if lo == hi {
			rootSelf += v
			continue
		}
		for pos := lo; pos < hi; pos++ {
			node := sf.posNode[pos]
			total[node] += v
			present[node] = present[node] || v != 0
		}
		self[sf.posNode[hi-1]] += v
	}
	out := newPart(n + 1)
	out.ID, out.A, out.B = append(out.ID, 0), append(out.A, rootSelf), append(out.B, rootTotal)
	return out.appendPresent(sf.node, self, total, present)
}

// functions is StackFold.functions: per frame its flat (stacks ending in it) and cum (stacks
// holding it, once however often it recurs), for frames some stack with a non-zero value holds.
func (sf *stackFold) functions(values []int64) Part {
	n := len(sf.fnFrame)
	flat := make([]int64, n)
	cum := make([]int64, n)
	present := make([]bool, n)
	lastStack := make([]int, n)
	for i := range lastStack {
		lastStack[i] = -1
	}
	for s, v := range values {
		lo, hi := sf.offsets[s], sf.offsets[s+1]
		for pos := lo; pos < hi; pos++ {
			fn := sf.posFn[pos]
			if lastStack[fn] != s {
				lastStack[fn] = s
				cum[fn] += v
				present[fn] = present[fn] || v != 0
			}
		}
		if lo < hi {
			flat[sf.posFn[hi-1]] += v
		}
	}
	return newPart(n).appendPresent(sf.fnFrame, flat, cum, present)
}

// appendPresent adds the entries of ids, a and b where present is true.
func (p Part) appendPresent(ids []uint64, a, b []int64, present []bool) Part {
	for i, keep := range present {
		if keep {
			p.ID, p.A, p.B = append(p.ID, ids[i]), append(p.A, a[i]), append(p.B, b[i])
		}
	}
	return p
}

func newPart(capacity int) Part {
	return Part{ID: make([]uint64, 0, capacity), A: make([]int64, 0, capacity), B: make([]int64, 0, capacity)}
}
