package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

var errNoLongPoll = errors.New("server refuses the wait parameter")

// permanentError is an answer that retrying cannot change (a 4xx other than 408/429).
type permanentError struct {
	status int
	body   string
}

func (e *permanentError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

// busyError is a 503 or 429 with Retry-After: the server is fine but full (an upload budget);
// the request should be sent again after `after`.
type busyError struct {
	status int
	after  time.Duration
	body   string
}

func (e *busyError) Error() string {
	return fmt.Sprintf("HTTP %d (retry after %s): %s", e.status, e.after, e.body)
}

// maxRetryAfter caps a server's Retry-After, so a wrong header cannot park the agent for long.
const maxRetryAfter = 5 * time.Minute

// retryAfter reads Retry-After as delay-seconds or an HTTP date; ok is false when absent or unreadable.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = max(at.Sub(now), 0)
	} else {
		return 0, false
	}
	return min(d, maxRetryAfter), true
}

type client struct {
	cfg  Config
	http *http.Client
}

func newClient(cfg Config) *client { return &client{cfg: cfg, http: cfg.HTTPClient} }

const maxResponse = 1 << 20

func (c *client) do(ctx context.Context, method, path string, query url.Values, body []byte,
	header http.Header) ([]byte, error) {
	u := c.cfg.Server + path
	if query != nil {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, &permanentError{0, err.Error()}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return data, nil
	}
	if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests {
		if d, ok := retryAfter(resp.Header, time.Now()); ok {
			return nil, &busyError{resp.StatusCode, d, string(data)}
		}
	}
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != 408 && resp.StatusCode != 429 {
		return nil, &permanentError{resp.StatusCode, string(data)}
	}
	return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, data)
}

type commandsResponse struct {
	Commands []struct {
		Command string `json:"command"`
		Args    []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"args"`
	} `json:"commands"`
}

// commands asks for the next task; nil when there is none (yet).
func (c *client) commands(ctx context.Context, lastCommandTime int64, wait time.Duration) (*command, error) {
	q := url.Values{"service": {c.cfg.Service}, "serviceInstance": {c.cfg.Instance},
		"lastCommandTime": {strconv.FormatInt(lastCommandTime, 10)}}
	if wait > 0 {
		q.Set("wait", strconv.Itoa(int(wait/time.Second)))
	}
	rctx, cancel := context.WithTimeout(ctx, wait+15*time.Second)
	defer cancel()
	data, err := c.do(rctx, http.MethodGet, "/api/v1/pprof/agent/commands", q, nil, nil)
	var perm *permanentError
	if wait > 0 && errors.As(err, &perm) && perm.status == http.StatusBadRequest {
		return nil, errNoLongPoll
	}
	if err != nil {
		return nil, err
	}
	var body commandsResponse
	if err := json.Unmarshal(data, &body); err != nil {
		return nil, fmt.Errorf("commands response: %w", err)
	}
	for _, cmd := range body.Commands {
		if cmd.Command != "PprofTaskQuery" {
			continue
		}
		args := make(map[string]string, len(cmd.Args))
		for _, a := range cmd.Args {
			args[a.Key] = a.Value
		}
		return parseCommand(args)
	}
	return nil, nil
}

func (c *client) uploadProfile(ctx context.Context, taskID string, profile []byte, idempotencyKey string) error {
	q := url.Values{"taskId": {taskID}, "service": {c.cfg.Service}, "serviceInstance": {c.cfg.Instance}}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	// Expect: 100-continue lets a busy server answer 503 before the profile is sent.
	_, err := c.do(rctx, http.MethodPost, "/api/v1/pprof/agent/profiles", q, profile,
		http.Header{"Content-Type": {"application/octet-stream"}, "Idempotency-Key": {idempotencyKey},
			"Expect": {"100-continue"}})
	return err
}

func (c *client) reportError(ctx context.Context, taskID, message string) error {
	body, _ := json.Marshal(map[string]string{"taskId": taskID, "service": c.cfg.Service,
		"serviceInstance": c.cfg.Instance, "message": message})
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := c.do(rctx, http.MethodPost, "/api/v1/pprof/agent/errors", nil, body,
		http.Header{"Content-Type": {"application/json"}})
	return err
}
