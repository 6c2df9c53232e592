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

// removeMatching removes nested start..end groups; on a mismatch the name comes back unchanged.
// The delimiters are ASCII, so byte offsets find what Python's code-point offsets find.
func removeMatching(name string, start, end byte) string {
	nesting, first, current := 0, 0, 0
	for {
		next := -1
		if current <= len(name) {
			for _, c := range []byte{start, end} {
				if i := strings.IndexByte(name[current:], c); i != -1 && (next == -1 || current+i < next) {
					next = current + i
				}
			}
		}
		if next == -1 {
			return name
		}
		current = next
		if name[current] == start {
			nesting++
			if nesting == 1 {
				first = current
			}
		} else {
			nesting--
			if nesting < 0 {
				return name
			}
			if nesting == 0 {
				name = name[:first] + name[current+1:]
				current = first - 1
			}
		}
		current++
	}
}
