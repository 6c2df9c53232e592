package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestStartedNotFinishedSurvivesAReload(t *testing.T) {
	dir := t.TempDir()
	s, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.markStarted("a")
	s.markStarted("b")
	s.markStarted("b") // twice (a hand-edited file): finished once is enough
	s.markFinished("b")
	s.markFinished("unknown") // no effect
	again, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.unfinished(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("unfinished after a reload: %v, want [a]", got)
	}
	if !again.ran("a") || !again.ran("b") || again.ran("c") {
		t.Fatal("begun tasks must never run again, finished or not")
	}
	again.markFinished("a")
	if third, _ := loadState(dir); len(third.unfinished()) != 0 || !third.ran("a") {
		t.Fatalf("after finishing: unfinished %v, ran(a) %v", third.unfinished(), third.ran("a"))
	}
}

func TestAStateFileOfAnOlderAgentMeansEveryTaskFinished(t *testing.T) {
	dir := t.TempDir()
	// As the agent wrote it before it told begun from finished: `ran` only.
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(`{"lastCommandTime":42,"ran":["old-1","old-2"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.unfinished()) != 0 || !s.ran("old-1") || !s.ran("old-2") || s.lastCommandTime() != 42 {
		t.Fatalf("unfinished %v, ran %v %v, last %d", s.unfinished(), s.ran("old-1"), s.ran("old-2"), s.lastCommandTime())
	}
	// What an older agent reads back from a newer file: a begun task is still in `ran`.
	s.markStarted("new-1")
	raw, _ := os.ReadFile(filepath.Join(dir, "state.json"))
	if !strings.Contains(string(raw), `"ran":["old-1","old-2","new-1"]`) {
		t.Fatalf("state file %s", raw)
	}
}

func TestADamagedStateFileOnlyCostsARerun(t *testing.T) {
	for _, content := range []string{`{"ran":["x"],"running":["y"`, `{"ran":["x"],"running":5}`, "\x00garbage"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := loadState(dir)
		if err != nil {
			t.Fatalf("%q: %v", content, err)
		}
		if len(s.unfinished()) != 0 || s.lastCommandTime() != 0 {
			t.Fatalf("%q: unfinished %v, last %d: a damaged file must not report anything", content, s.unfinished(), s.lastCommandTime())
		}
		s.markStarted("z") // and the agent goes on saving
		if again, _ := loadState(dir); !slices.Equal(again.unfinished(), []string{"z"}) {
			t.Fatalf("%q: not saved over: %v", content, again.unfinished())
		}
	}
}

func TestStateBoundsWhatItRemembers(t *testing.T) {
	s, err := loadState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < maxRemembered+10; i++ {
		s.markStarted(strings.Repeat("t", 1+i%3) + string(rune('a'+i%26)) + string(rune('0'+i/26)))
	}
	if len(s.data.Ran) != maxRemembered || len(s.data.Running) != maxRemembered {
		t.Fatalf("remembers %d begun, %d unfinished", len(s.data.Ran), len(s.data.Running))
	}
}
