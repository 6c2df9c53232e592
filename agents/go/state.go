package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
)

// state is what survives a restart: the newest command seen and the tasks already run, so a
// process restarted within a task's window neither receives nor runs it again.
type state struct {
	mu   sync.Mutex
	path string
	data stateData
}

type stateData struct {
	LastCommandTime int64    `json:"lastCommandTime"`
	Ran             []string `json:"ran"` // newest last, bounded
}

const maxRemembered = 256

func loadState(dir string) (*state, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &state{path: filepath.Join(dir, "state.json")}
	raw, err := os.ReadFile(s.path)
	if err == nil {
		_ = json.Unmarshal(raw, &s.data) // a damaged file only costs a re-run
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

func (s *state) ran(taskID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.data.Ran {
		if id == taskID {
			return true
		}
	}
	return false
}

func (s *state) markRan(taskID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data.Ran = append(s.data.Ran, taskID)
	if len(s.data.Ran) > maxRemembered {
		s.data.Ran = s.data.Ran[len(s.data.Ran)-maxRemembered:]
	}
	s.saveLocked()
}

// saveLocked writes atomically (temp file + rename); failures are ignored: the state only
// prevents re-runs, it never blocks the agent.
func (s *state) saveLocked() {
	raw, _ := json.Marshal(s.data)
	tmp := s.path + ".tmp"
	if os.WriteFile(tmp, raw, 0o600) == nil {
		_ = os.Rename(tmp, s.path)
	}
}
