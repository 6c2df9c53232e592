package fold

import "strings"

// displayName is proftask/pprof/names.py's display_name: function names as `go tool pprof`
// shows them (its symbolizer simplifies names that look like demangled C++, Go generics among
// them, when the profiler did not demangle them itself).
func displayName(name, systemName string) string {
	if name != "" && systemName != name {
		return name
	}
	shown := systemName
	if looksLikeDemangledCplusplus(shown) {
		shown = removeMatching(shown, '(', ')')
		shown = removeMatching(shown, '<', '>')
	}
	return shown
}

func looksLikeDemangledCplusplus(name string) bool {
	if strings.Contains(name, ".<") || strings.Contains(name, "]).") {
		return false
	}
	return strings.ContainsAny(name, "<>[]") || strings.Contains(name, "::")
}

// removeMatching removes nested start..end groups; on a mismatch the name comes back unchanged
// past it (the groups before it removed, as pprof's loop leaves them). One pass: cutting each
// group out and searching again from its start took O(len²), seconds for a 100 KB name.
func removeMatching(name string, start, end byte) string {
	var kept []byte
	nesting, first, copied := 0, 0, 0
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case start:
			nesting++
			if nesting == 1 {
				first = i
			}
		case end:
			nesting--
			if nesting < 0 {
				return string(kept) + name[copied:]
			}
			if nesting == 0 {
				kept = append(kept, name[copied:first]...)
				copied = i + 1
			}
		}
	}
	if copied == 0 {
		return name
	}
	return string(kept) + name[copied:]
}
