// swquery: a client of SkyWalking's GraphQL query protocol built on goapi's generated `query`
// types, asking what swctl asks (the documents of skywalking-cli's assets/graphqls, v9+) and
// decoding the answers strictly (unknown fields, enum values, types: an error). One command
// per run, its decoded answer as JSON on stdout.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"skywalking.apache.org/repo/goapi/query"
)

var (
	baseURL = flag.String("base-url", "http://127.0.0.1:8080/graphql", "proftask's /graphql (swctl --base-url)")
	token   = flag.String("token", "", "Authorization: Bearer token")
)

type response[T any] struct {
	Data   *T                `json:"data"`
	Errors []json.RawMessage `json:"errors"`
}

func ask[T any](document string, variables map[string]any) T {
	body, _ := json.Marshal(map[string]any{"query": document, "variables": variables})
	req, _ := http.NewRequest(http.MethodPost, *baseURL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fail(err.Error())
	}
	defer resp.Body.Close()
	var out response[T]
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		fail(fmt.Sprintf("HTTP %d, undecodable answer: %v", resp.StatusCode, err))
	}
	if len(out.Errors) > 0 || out.Data == nil {
		emit(map[string]any{"errors": out.Errors})
		os.Exit(3)
	}
	return *out.Data
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "swquery:", message)
	os.Exit(1)
}

func emit(v any) {
	_ = json.NewEncoder(os.Stdout).Encode(v)
}

// serviceID resolves a service name as swctl does: version first (9+ selects the current
// documents), then findService.
func serviceID(name string) string {
	v := ask[struct {
		Version string `json:"version"`
	}]("query { version }", nil)
	major, err := strconv.Atoi(strings.SplitN(v.Version, ".", 2)[0])
	if err != nil || major < 9 {
		fail("version " + v.Version + " is not 9 or later")
	}
	t := ask[struct {
		Result query.TimeInfo `json:"result"`
	}]("query { result: getTimeInfo { timezone currentTimestamp } }", nil)
	if t.Result.Timezone == nil || len(*t.Result.Timezone) != 5 {
		fail("getTimeInfo has no timezone like +0800")
	}
	s := ask[struct {
		Result *query.Service `json:"result"`
	}]("query ($serviceName: String!) { result: findService(serviceName: $serviceName) { id name group shortName layers normal } }",
		map[string]any{"serviceName": name})
	if s.Result == nil {
		fail("service " + name + " not found")
	}
	return s.Result.ID
}

func main() {
	flag.Parse()
	cmd := flag.NewFlagSet(flag.Arg(0), flag.ExitOnError)
	service := cmd.String("service-name", "", "service name")
	instances := cmd.String("instance-name-list", "", "instance names, comma-separated")
	events := cmd.String("events", "CPU", "event type")
	duration := cmd.Int("duration", 1, "minutes")
	taskID := cmd.String("task-id", "", "task id")
	_ = cmd.Parse(flag.Args()[1:])

	switch flag.Arg(0) {
	case "create":
		sid := serviceID(*service)
		var ids []string
		for _, name := range strings.Split(*instances, ",") {
			ids = append(ids, sid+"_"+b64(name))
		}
		req := query.PprofTaskCreationRequest{ServiceID: sid, ServiceInstanceIds: ids,
			Events: query.PprofEventType(strings.ToUpper(*events)), Duration: duration}
		out := ask[struct {
			Result query.PprofTaskCreationResult `json:"result"`
		}]("mutation ($request: PprofTaskCreationRequest!) { result: createPprofTask(pprofTaskCreationRequest: $request) { id code errorReason } }",
			map[string]any{"request": req})
		emit(out.Result)
	case "list":
		sid := serviceID(*service)
		out := ask[struct {
			Result query.PprofTaskListResult `json:"result"`
		}]("query ($request: PprofTaskListRequest!) { result: queryPprofTaskList(request: $request) { errorReason tasks { id serviceId serviceInstanceIds createTime events duration dumpPeriod } } }",
			// swctl sends the window of the last 30 minutes, with coldStage set as query protocols 10.2+ define it
			map[string]any{"request": query.PprofTaskListRequest{ServiceID: sid, QueryDuration: lastHalfHour()}})
		emit(out.Result)
	case "progress":
		out := ask[struct {
			Result query.PprofTaskProgress `json:"result"`
		}]("query ($taskId: String!) { result: queryPprofTaskProgress(taskId: $taskId) { logs { id instanceId instanceName operationType operationTime } errorInstanceIds successInstanceIds } }",
			map[string]any{"taskId": *taskID})
		for _, l := range out.Result.Logs {
			if !l.OperationType.IsValid() {
				fail("unknown operationType " + string(l.OperationType))
			}
		}
		emit(out.Result)
	case "analyze":
		sid := serviceID(*service)
		var ids []string
		for _, name := range strings.Split(*instances, ",") {
			ids = append(ids, sid+"_"+b64(name))
		}
		out := ask[struct {
			Result query.PprofAnalyzation `json:"result"`
		}]("query ($request: PprofAnalyzationRequest!) { result: queryPprofAnalyze(request: $request) { tree { elements { id parentId codeSignature total self } } } }",
			map[string]any{"request": query.PprofAnalyzationRequest{TaskID: *taskID, InstanceIds: ids}})
		emit(out.Result)
	default:
		fail("usage: swquery -base-url URL [-token T] create|list|progress|analyze [flags]")
	}
}

func lastHalfHour() *query.Duration {
	const minute = "2006-01-02 1504"
	now, cold := time.Now().UTC(), false
	return &query.Duration{Start: now.Add(-30 * time.Minute).Format(minute), End: now.Format(minute),
		Step: query.StepMinute, ColdStage: &cold}
}

func b64(s string) string {
	return base64.StdEncoding.EncodeToString([]byte(s))
}
