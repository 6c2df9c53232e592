// swclient drives proftask's gRPC endpoint with SkyWalking's official generated client
// (skywalking.apache.org/repo/goapi, collect/pprof/v10), doing what skywalking-go's agent does:
// poll commands, then upload metadata first, wait for the status, send 1 MiB chunks.
//
// One JSON object per run on stdout, for the integration tests:
//
//	swclient -target HOST:PORT poll -service S -instance I [-last MS]
//	swclient -target HOST:PORT upload -service S -instance I -task T -file F
//	    [-declare N] [-chunks K] [-cut-after K] [-chunk-bytes B]
//	swclient -target HOST:PORT error -service S -instance I -task T [-message M]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	managementv3 "skywalking.apache.org/repo/goapi/collect/management/v3"
	pprofv10 "skywalking.apache.org/repo/goapi/collect/pprof/v10"
)

const maxChunkSize = 1024 * 1024 // skywalking-go's chunk size

type result map[string]any

func main() {
	target := flag.String("target", "127.0.0.1:11800", "proftask gRPC address")
	auth := flag.String("auth", "", "Authentication metadata, as skywalking-go sends its token")
	flag.Parse()
	if flag.NArg() < 1 {
		fail("usage: swclient -target HOST:PORT poll|upload|error|keepalive [flags]")
	}
	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail(err.Error())
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // the agent's upload deadline
	defer cancel()
	if *auth != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "Authentication", *auth)
	}
	client := pprofv10.NewPprofTaskClient(conn)

	cmd := flag.NewFlagSet(flag.Arg(0), flag.ExitOnError)
	service := cmd.String("service", "", "service name")
	instance := cmd.String("instance", "", "service instance name")
	task := cmd.String("task", "", "task id")
	last := cmd.Int64("last", 0, "lastCommandTime (ms)")
	file := cmd.String("file", "", "profile to upload")
	declare := cmd.Int("declare", -1, "contentSize to declare (default: the file's size)")
	cutAfter := cmd.Int("cut-after", -1, "cancel the stream after sending this many chunks")
	chunkBytes := cmd.Int("chunk-bytes", maxChunkSize, "chunk size")
	message := cmd.String("message", "", "errorMessage of an error report")
	_ = cmd.Parse(flag.Args()[1:])

	var out result
	switch flag.Arg(0) {
	case "poll":
		out = poll(ctx, client, *service, *instance, *last)
	case "upload":
		content, err := os.ReadFile(*file)
		if err != nil {
			fail(err.Error())
		}
		size := len(content)
		if *declare >= 0 {
			size = *declare
		}
		out = upload(ctx, cancel, client, &pprofv10.PprofMetaData{
			Service: *service, ServiceInstance: *instance, TaskId: *task,
			Type: pprofv10.PprofProfilingStatus_PPROF_PROFILING_SUCCESS, ContentSize: int32(size),
		}, nil, content, *chunkBytes, *cutAfter)
	case "error":
		// skywalking-go's ReportPprofError: the failure status in the metadata; the text rides
		// in errorMessage when the client sends one.
		meta := &pprofv10.PprofMetaData{Service: *service, ServiceInstance: *instance, TaskId: *task,
			Type: pprofv10.PprofProfilingStatus_PPROF_EXECUTION_TASK_ERROR}
		out = upload(ctx, cancel, client, meta, message, nil, maxChunkSize, -1)
	case "keepalive":
		// Another SkyWalking service the agent calls; proftask does not implement it.
		_, err := managementv3.NewManagementServiceClient(conn).KeepAlive(ctx, &managementv3.InstancePingPkg{
			Service: *service, ServiceInstance: *instance})
		out = result{"code": status.Code(err).String()}
	default:
		fail("unknown command " + flag.Arg(0))
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

func poll(ctx context.Context, client pprofv10.PprofTaskClient, service, instance string, last int64) result {
	commands, err := client.GetPprofTaskCommands(ctx, &pprofv10.PprofTaskCommandQuery{
		Service: service, ServiceInstance: instance, LastCommandTime: last})
	if err != nil {
		return result{"code": status.Code(err).String(), "error": err.Error()}
	}
	var list []result
	for _, c := range commands.GetCommands() {
		args := map[string]string{}
		var order []string
		for _, kv := range c.GetArgs() {
			args[kv.GetKey()] = kv.GetValue()
			order = append(order, kv.GetKey())
		}
		list = append(list, result{"command": c.GetCommand(), "args": args, "order": order})
	}
	return result{"code": "OK", "commands": list}
}

// upload is uploadPprofData of skywalking-go: metadata, wait for the answer, chunks, CloseSend,
// read until EOF. It also returns every status the server sent and the final gRPC code.
func upload(ctx context.Context, cancel context.CancelFunc, client pprofv10.PprofTaskClient,
	meta *pprofv10.PprofMetaData, errorMessage *string, content []byte, chunkSize, cutAfter int) result {
	stream, err := client.Collect(ctx)
	if err != nil {
		return result{"code": status.Code(err).String(), "error": err.Error()}
	}
	first := &pprofv10.PprofData{Metadata: meta}
	if errorMessage != nil && *errorMessage != "" {
		first.Result = &pprofv10.PprofData_ErrorMessage{ErrorMessage: *errorMessage}
	}
	if err := stream.Send(first); err != nil {
		return result{"code": status.Code(err).String(), "error": err.Error()}
	}
	resp, err := stream.Recv()
	if err != nil {
		return result{"code": status.Code(err).String(), "error": err.Error()}
	}
	statuses := []string{resp.GetStatus().String()}
	out := result{"first": resp.GetStatus().String()}
	if resp.GetStatus() == pprofv10.PprofProfilingStatus_PPROF_PROFILING_SUCCESS && meta.Type == pprofv10.PprofProfilingStatus_PPROF_PROFILING_SUCCESS {
		sent := 0
		for offset := 0; offset < len(content); offset += chunkSize {
			if cutAfter >= 0 && sent == cutAfter {
				cancel() // the stream is cut mid-way
				time.Sleep(200 * time.Millisecond)
				out["cut"] = true
				out["code"] = "CANCELLED"
				out["chunks"] = sent
				return out
			}
			end := min(offset+chunkSize, len(content))
			if err := stream.Send(&pprofv10.PprofData{Result: &pprofv10.PprofData_Content{Content: content[offset:end]}}); err != nil {
				break // the server ended the stream (e.g. oversize); its status follows in Recv
			}
			sent++
		}
		out["chunks"] = sent
	}
	_ = stream.CloseSend()
	code := "OK"
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			code = status.Code(err).String()
			out["error"] = err.Error()
			break
		}
		statuses = append(statuses, resp.GetStatus().String())
	}
	if reason := stream.Trailer().Get("proftask-reason"); len(reason) > 0 {
		out["reason"] = reason[0]
	}
	out["statuses"] = statuses
	out["code"] = code
	return out
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(2)
}
