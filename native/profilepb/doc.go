// Package profilepb is schemas/proftask/pprof/v1/profile.proto for Go (the Python side generates
// its module from the same file). Regenerate after changing the schema, from the repository root:
//
//	GOBIN=/tmp/bin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	.venv/bin/python -m grpc_tools.protoc --plugin=protoc-gen-go=/tmp/bin/protoc-gen-go -Ischemas \
//	  --go_out=native/profilepb --go_opt=paths=source_relative \
//	  --go_opt=Mproftask/pprof/v1/profile.proto=proftask.dev/native/profilepb \
//	  schemas/proftask/pprof/v1/profile.proto
//	mv native/profilepb/proftask/pprof/v1/profile.pb.go native/profilepb/ && rm -r native/profilepb/proftask
package profilepb
