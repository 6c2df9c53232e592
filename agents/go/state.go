package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// state is what survives a restart: the newest command seen, the tasks begun (so a process
// restarted within a task's window neither receives nor runs it again) and, among them, those
// not finished yet (so a restarted process tells proftask about a task its predecessor was cut
// short in).
type state struct {
	mu   sync.Mutex
	path string
	data stateData
}

// stateData is the file's content. `ran` keeps the meaning it had before `running` existed
// ("never run again"), so a file written by an older agent reads as every task finished, and an
// older agent reading a newer file still runs nothing twice.
type stateData struct {
	LastCommandTime int64    `json:"lastCommandTime"`
	Ran             []string `json:"ran"`               // begun here, finished or not; newest last, bounded
	Running         []string `json:"running,omitempty"` // begun and not finished (outcome not told to proftask)
}

const maxRemembered = 256

func loadState(dir string) (*state, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &state{path: filepath.Join(dir, "state.json")}
	raw, err := os.ReadFile(s.path)
	if err == nil {
		if json.Unmarshal(raw, &s.data) != nil {
			s.data = stateData{} // a damaged file only costs a re-run, never a false report
		}
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	return s, nil
}

func (s *state) lastCommandTime() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data.LastCommandTime
}

func (s *state) sawCommand(createTime int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if createTime > s.data.LastCommandTime {
		s.data.LastCommandTime = createTime
		s.saveLocked()
	}
}

// ran says whether the task was begun here, finished or not: it is never run again.
func (s *state) ran(taskID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.data.Ran, taskID) || slices.Contains(s.data.Running, taskID)
}

// markStarted records the task before it runs: saved at once, so a process killed meanwhile
// leaves it as begun and not finished.
func (s *state) markStarted(taskID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data.Ran = bounded(append(s.data.Ran, taskID))
	s.data.Running = bounded(append(s.data.Running, taskID))
	s.saveLocked()
}

// markFinished records that the task's outcome reached proftask (or never can): it is not
// reported again.
func (s *state) markFinished(taskID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.data.Running, taskID) {
		return
	}
	s.data.Running = slices.DeleteFunc(s.data.Running, func(id string) bool { return id == taskID })
	s.saveLocked()
}

// unfinished lists the tasks begun and not finished, oldest first.
func (s *state) unfinished() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, id := range s.data.Running {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func bounded(ids []string) []string {
	if len(ids) > maxRemembered {
		return ids[len(ids)-maxRemembered:]
	}
	return ids
}

// saveLocked writes atomically (temp file + rename); failures are ignored: the state only
// prevents re-runs and late reports, it never blocks the agent.
func (s *state) saveLocked() {
	raw, _ := json.Marshal(s.data)
	tmp := s.path + ".tmp"
	if os.WriteFile(tmp, raw, 0o600) == nil {
		_ = os.Rename(tmp, s.path)
	}
}
