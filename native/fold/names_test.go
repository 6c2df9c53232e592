package fold

import "testing"

// The answers of proftask/pprof/names.py display_name for the same names.
func TestDisplayNameIsThePythonOne(t *testing.T) {
	for _, c := range []struct{ name, system, want string }{
		{"", "main.F[go.shape.int]", "main.F[go.shape.int]"},
		{"std::vector<int>::push_back(int const&)", "std::vector<int>::push_back(int const&)", "std::vector::push_back"},
		{"main.(*T[...]).M", "main.(*T[...]).M", "main.(*T[...]).M"},
		{"Foo.<init>", "Foo.<init>", "Foo.<init>"},
		{"demangled", "mangled", "demangled"},
		{"a(b(c)", "a(b(c)", "a(b(c)"},
		{"f>(x)<", "f>(x)<", "f><"},
		{"é::ñ<ü>(x)", "é::ñ<ü>(x)", "é::ñ"},
	} {
		if got := displayName(c.name, c.system); got != c.want {
			t.Errorf("displayName(%q, %q) = %q, want %q", c.name, c.system, got, c.want)
		}
	}
}
