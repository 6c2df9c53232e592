package fold

import (
	"regexp"
	"slices"
	"strings"

	"proftask.dev/native/profilepb"
)

// pprof's RemoveUninteresting, which `go tool pprof` applies to every profile it reads: a
// profile's drop_frames (and keep_frames) regexps cut the frames they name, and those beneath,
// from its stacks (github.com/google/pprof/profile/prune.go, Prune). A regexp that does not
// compile cuts nothing, as pprof ignores RemoveUninteresting's error. proftask.pprof.prune is
// the same in Python.

var (
	reservedNames = []string{"(anonymous namespace)", "operator()"}
	bracketRx     = regexp.MustCompile(`\(anonymous namespace\)|operator\(\)|\(`)
)

// simplifyFunc is pprof's: a name without its argument list (from the first '(' that does not
// belong to a reserved name) and a leading '.'.
func simplifyFunc(f string) string {
	name := strings.TrimPrefix(f, ".")
	for _, at := range bracketRx.FindAllStringIndex(name, -1) {
		if !slices.Contains(reservedNames, name[at[0]:at[1]]) {
			return name[:at[0]]
		}
	}
	return name
}

// prune applies p's drop_frames and keep_frames to its locations and samples in place.
func prune(p *profilepb.Profile) {
	strs := p.GetStringTable()
	text := func(i int64) string {
		if i > 0 && i < int64(len(strs)) {
			return string(strs[i])
		}
		return ""
	}
	dropFrames, keepFrames := text(p.GetDropFrames()), text(p.GetKeepFrames())
	if dropFrames == "" {
		return
	}
	drop, err := regexp.Compile("^(" + dropFrames + ")$")
	if err != nil {
		return
	}
	var keep *regexp.Regexp
	if keepFrames != "" {
		if keep, err = regexp.Compile("^(" + keepFrames + ")$"); err != nil {
			return // pprof: RemoveUninteresting returns before Prune
		}
	}
	// matched as pprof matches them: after its symbolizer named them (displayName)
	names := make(map[uint64]string, len(p.GetFunction()))
	for _, f := range p.GetFunction() {
		names[f.GetId()] = displayName(text(f.GetName()), text(f.GetSystemName()))
	}
	cache := map[string]bool{}
	pruneFromHere := func(name string) bool {
		r, ok := cache[name]
		if !ok {
			simple := simplifyFunc(name)
			r = drop.MatchString(simple) && (keep == nil || !keep.MatchString(simple))
			cache[name] = r
		}
		return r
	}
	pruned, beneath := map[uint64]bool{}, map[uint64]bool{}
	for _, loc := range p.GetLocation() {
		lines := loc.GetLine()
		i := len(lines) - 1
		for ; i >= 0; i-- { // from the outermost caller
			if name, ok := names[lines[i].GetFunctionId()]; ok && name != "" && pruneFromHere(name) {
				break
			}
		}
		if i < 0 {
			continue
		}
		beneath[loc.GetId()] = true
		if i == len(lines)-1 {
			pruned[loc.GetId()] = true
		} else {
			loc.Line = lines[i+1:]
		}
	}
	if len(beneath) == 0 {
		return
	}
	for _, s := range p.GetSample() {
		ids := s.GetLocationId() // leaf first
		user := false            // frames before the first that is not pruned stay: not everything goes
		for i := len(ids) - 1; i >= 0; i-- {
			id := ids[i]
			if !pruned[id] && !beneath[id] {
				user = true
				continue
			}
			if !user {
				continue
			}
			if pruned[id] {
				s.LocationId = ids[i+1:]
			} else {
				s.LocationId = ids[i:]
			}
			break
		}
	}
}
