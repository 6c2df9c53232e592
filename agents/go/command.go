package agent

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// command is a PprofTaskQuery as received: SkyWalking's six string args.
type command struct {
	serial     string
	taskID     string
	events     string
	duration   string
	createTime int64
	dumpPeriod string
}

type event string

const (
	eventCPU          event = "cpu"
	eventHeap         event = "heap"
	eventAllocs       event = "allocs"
	eventBlock        event = "block"
	eventMutex        event = "mutex"
	eventGoroutine    event = "goroutine"
	eventThreadcreate event = "threadcreate"
)

const maxDuration = 15 * time.Minute

// task is a command that passed validation.
type task struct {
	id         string
	event      event
	duration   time.Duration
	dumpPeriod int
}

func (e event) sampled() bool { return e == eventCPU || e == eventBlock || e == eventMutex }

// task validates the command as SkyWalking's agent does (checkCommand), with the reason.
func (c *command) task() (*task, error) {
	if c.taskID == "" {
		return nil, fmt.Errorf("command has no TaskId")
	}
	ev := event(strings.ToLower(strings.TrimSpace(c.events)))
	switch ev {
	case eventCPU, eventHeap, eventAllocs, eventBlock, eventMutex, eventGoroutine, eventThreadcreate:
	default:
		return nil, fmt.Errorf("unknown event %q", c.events)
	}
	t := &task{id: c.taskID, event: ev}
	if ev.sampled() {
		minutes, err := strconv.Atoi(c.duration)
		if err != nil || minutes <= 0 || time.Duration(minutes)*time.Minute > maxDuration {
			return nil, fmt.Errorf("duration %q must be 1..15 minutes for %s", c.duration, ev)
		}
		t.duration = time.Duration(minutes) * time.Minute
	}
	if ev == eventBlock || ev == eventMutex {
		rate, err := strconv.Atoi(c.dumpPeriod)
		if err != nil || rate <= 0 {
			return nil, fmt.Errorf("dumpPeriod %q must be a positive sampling rate for %s", c.dumpPeriod, ev)
		}
		t.dumpPeriod = rate
	}
	return t, nil
}

// parseCommand reads the args of a PprofTaskQuery command.
func parseCommand(args map[string]string) (*command, error) {
	createTime, err := strconv.ParseInt(args["CreateTime"], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("command CreateTime %q is not a number", args["CreateTime"])
	}
	return &command{serial: args["SerialNumber"], taskID: args["TaskId"], events: args["Events"],
		duration: args["Duration"], createTime: createTime, dumpPeriod: args["DumpPeriod"]}, nil
}
