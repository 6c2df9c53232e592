package fold

import (
	"slices"
	"sync"
)

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
// stacks at one granularity. Nodes are numbered in the order of their hashes (node ids), as the
// Python fold has them, so every part lists its nodes ascending by id.
type stackFold struct {
	offsets []int64
	posNode []int32  // node of each position
	node    []uint64 // the nodes' hashes, ascending (a view of the Result's PathNode)
	// functions: each distinct frame in order of its id, and of each position its function
	fnFrame []uint64
	posFn   []int32
	sc      *scratch
	// the previous part's nodes (present) and their ids, of the previous sample type: a part
	// whose nodes are the same shares its ids (Part.SameIDs)
	previousPresent []bool
	previousIDs     []uint64
}

// scratch is memory a fold reuses across granularities and sample types.
type scratch struct {
	found       []keyed     // nodes as found: their hash and the index of their path
	paths       []foundPath // the paths of the nodes found, in that order
	sorted      []keyed     // sortKeyed's other buffer
	rank        []int32     // of each node found, its place by hash
	total, self []int64
	present     []bool
	lastStack   []int
	// the stack fold's own (one granularity's at a time): every position is written
	posNode, posFn []int32
}

// foundPath is a node's path but its hash, together: read in the order of the hashes, one
// cache miss rather than three.
type foundPath struct {
	parent, frame uint64
	depth         uint32
}

// kept is the last fold's scratch, for the next fold of the process: a large profile's is
// ~100 MB, which made anew each time the runtime cleared and collected again (a tenth of the
// fold's time). Not a sync.Pool: the collections a large fold itself triggers would empty it.
// DropScratch lets it go (libfold, when the process has been idle a moment).
var (
	keptMu sync.Mutex
	kept   *scratch
)

// takeScratch: nodes found take at most one a position (nPos); the rest grows at first use.
// Given back with putScratch once the fold is done with it; folds at once each have their own.
func takeScratch(nPos int) *scratch {
	keptMu.Lock()
	sc := kept
	kept = nil
	keptMu.Unlock()
	if sc == nil {
		sc = &scratch{}
	}
	if cap(sc.found) < nPos {
		sc.found = make([]keyed, 0, nPos)
	}
	if cap(sc.paths) < nPos {
		sc.paths = make([]foundPath, 0, nPos)
	}
	return sc
}

func putScratch(sc *scratch) {
	keptMu.Lock()
	defer keptMu.Unlock()
	if kept == nil || cap(sc.found) >= cap(kept.found) { // a small fold does not undo a large one's
		kept = sc
	}
}

// DropScratch forgets the scratch kept for the next fold.
func DropScratch() {
	keptMu.Lock()
	defer keptMu.Unlock()
	kept = nil
}

// grow is s[:n], made anew when s holds fewer than n (its content is then undefined).
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// newStackFold folds the stacks (offsets into frames, the frame ids at this granularity;
// frameIndex: each position's frame among the profile's frames, whose ids are frameIDs). It
// appends the nodes' paths to r's (node_paths: node, parent, depth, frame), in the order of
// their hashes: the writer looks them up in its sorted memory of the nodes it wrote, ~8x faster
// for sorted queries.
//
// Nodes are found without hashing every position into a sorted table: with the stacks in
// lexicographic order, a path a stack shares with any earlier stack it shares with the one
// just before it, so each stack makes new nodes only past its common prefix with that one.
// They are then sorted by hash (a radix sort) and numbered in that order.
func newStackFold(offsets []int64, frames []uint64, frameIndex []int32, frameIDs []uint64, r *Result,
	sc *scratch) *stackFold {
	sf := &stackFold{offsets: offsets, sc: sc}
	nPos := len(frames)
	nStacks := len(offsets) - 1
	stack := func(s int) []uint64 { return frames[offsets[s]:offsets[s+1]] }
	order := make([]int, nStacks)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return slices.Compare(stack(a), stack(b)) })
	sc.posNode = grow(sc.posNode, nPos)
	sf.posNode = sc.posNode
	found, paths := sc.found[:0], sc.paths[:0]
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
			parent = found[sf.posNode[at+int64(shared)-1]].key
		}
		for d := shared; d < len(current); d++ {
			node := pathHash(parent, current[d])
			sf.posNode[at+int64(d)] = int32(len(found))
			found = append(found, keyed{node, int32(len(found))})
			paths = append(paths, foundPath{parent, current[d], uint32(d + 1)})
			parent = node
		}
		previous, previousAt = current, at
	}
	sc.paths = paths
	n := len(found)
	// by hash: the paths appended in that order, and each position's node renumbered
	sc.sorted = grow(sc.sorted, n)
	byHash := sortKeyed(found, sc.sorted)
	sc.found = found
	sc.rank = grow(sc.rank, n)
	base := len(r.PathNode)
	r.PathNode, r.PathParent = slices.Grow(r.PathNode, n)[:base+n], slices.Grow(r.PathParent, n)[:base+n]
	r.PathDepth, r.PathFrame = slices.Grow(r.PathDepth, n)[:base+n], slices.Grow(r.PathFrame, n)[:base+n]
	node, parent := r.PathNode[base:], r.PathParent[base:]
	depth, frame := r.PathDepth[base:], r.PathFrame[base:]
	for to, k := range byHash {
		p := &paths[k.at]
		node[to], parent[to], depth[to], frame[to] = k.key, p.parent, p.depth, p.frame
		sc.rank[k.at] = int32(to)
	}
	for pos, i := range sf.posNode {
		sf.posNode[pos] = sc.rank[i]
	}
	sf.node = node[:n:n]

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
	sc.posFn = grow(sc.posFn, nPos)
	sf.posFn = sc.posFn
	for pos, f := range frameIndex {
		sf.posFn[pos] = fnOf[f]
	}
	return sf
}

// nodes is StackFold.nodes: the root, then every node some stack with a non-zero value makes,
// ascending by node id (the root's is 0).
func (sf *stackFold) nodes(values []int64) Part {
	n := len(sf.node)
	total, self := zeroed(&sf.sc.total, n), zeroed(&sf.sc.self, n)
	present := zeroed(&sf.sc.present, n)
	var rootTotal, rootSelf int64
	for s, v := range values {
		rootTotal += v
		if v == 0 { // adds nothing, and makes no node present
			continue
		}
		lo, hi := sf.offsets[s], sf.offsets[s+1]
		if lo == hi {
			rootSelf += v
			continue
		}
		for _, node := range sf.posNode[lo:hi] {
			total[node] += v
			present[node] = true
		}
		self[sf.posNode[hi-1]] += v
	}
	count := 1
	for _, keep := range present {
		if keep {
			count++
		}
	}
	out := Part{A: make([]int64, count), B: make([]int64, count)}
	out.A[0], out.B[0] = rootSelf, rootTotal
	if sf.previousIDs != nil && slices.Equal(present, sf.previousPresent) {
		out.ID, out.SameIDs = sf.previousIDs, true
	} else {
		out.ID = make([]uint64, count)
		sf.previousPresent = append(sf.previousPresent[:0], present...)
		sf.previousIDs = out.ID
	}
	at := 1
	for i, keep := range present {
		if keep {
			if !out.SameIDs {
				out.ID[at] = sf.node[i]
			}
			out.A[at], out.B[at] = self[i], total[i]
			at++
		}
	}
	return out
}

// functions is StackFold.functions: per frame its flat (stacks ending in it) and cum (stacks
// holding it, once however often it recurs), for frames some stack with a non-zero value holds,
// ascending by frame id.
func (sf *stackFold) functions(values []int64) Part {
	n := len(sf.fnFrame)
	flat, cum := zeroed(&sf.sc.total, n), zeroed(&sf.sc.self, n)
	present := zeroed(&sf.sc.present, n)
	lastStack := grow(sf.sc.lastStack, n)
	sf.sc.lastStack = lastStack
	for i := range lastStack {
		lastStack[i] = -1
	}
	for s, v := range values {
		if v == 0 { // adds nothing, and makes no function present
			continue
		}
		lo, hi := sf.offsets[s], sf.offsets[s+1]
		for _, fn := range sf.posFn[lo:hi] {
			if lastStack[fn] != s {
				lastStack[fn] = s
				cum[fn] += v
				present[fn] = true
			}
		}
		if lo < hi {
			flat[sf.posFn[hi-1]] += v
		}
	}
	count := 0
	for _, keep := range present {
		if keep {
			count++
		}
	}
	out := Part{ID: make([]uint64, 0, count), A: make([]int64, 0, count), B: make([]int64, 0, count)}
	for i, keep := range present {
		if keep {
			out.ID, out.A, out.B = append(out.ID, sf.fnFrame[i]), append(out.A, flat[i]), append(out.B, cum[i])
		}
	}
	return out
}

// zeroed is *s resized to n and cleared (kept in *s for the next use).
func zeroed[T any](s *[]T, n int) []T {
	*s = grow(*s, n)
	clear(*s)
	return *s
}
