package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/loklak/loklak-dumps/internal/stackconfig"
	"github.com/pulumi/pulumi/sdk/v3/go/common/constant"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// runMainEnv makes the test binary run main() instead of the tests: how a test runs the program as the
// Go language host does, as a process with the engine's environment.
const runMainEnv = "LOKLAK_DUMPS_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakeEngine answers the program's engine and resource monitor RPCs and records what it was told.
type fakeEngine struct {
	pulumirpc.UnimplementedEngineServer
	mu         sync.Mutex
	logs       []*pulumirpc.LogRequest
	registered []string
}

func (f *fakeEngine) Log(_ context.Context, req *pulumirpc.LogRequest) (*emptypb.Empty, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, req)
	return &emptypb.Empty{}, nil
}

type fakeMonitor struct {
	pulumirpc.UnimplementedResourceMonitorServer
	engine *fakeEngine
}

func (m fakeMonitor) SupportsFeature(context.Context, *pulumirpc.SupportsFeatureRequest) (*pulumirpc.SupportsFeatureResponse, error) {
	return &pulumirpc.SupportsFeatureResponse{HasSupport: false}, nil
}

func (m fakeMonitor) RegisterResource(_ context.Context, req *pulumirpc.RegisterResourceRequest) (*pulumirpc.RegisterResourceResponse, error) {
	m.engine.mu.Lock()
	defer m.engine.mu.Unlock()
	m.engine.registered = append(m.engine.registered, req.GetType())
	return &pulumirpc.RegisterResourceResponse{Urn: "urn:pulumi:dev::loklak-dumps::" + req.GetType() + "::" + req.GetName()}, nil
}

func (m fakeMonitor) RegisterResourceOutputs(context.Context, *pulumirpc.RegisterResourceOutputsRequest) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// A bad config, run as the Go language host runs the program: one error diagnostic per bad key, naming
// the key, the value and what is allowed; exit status 32, on which pulumi-language-go answers the
// engine with Bail, so the run fails without "an unhandled error occurred"; nothing registered but the
// stack itself. (That nothing else is declared before the config is valid is pinned under mocks, in
// infra's TestBadConfigIsRefusedBeforeAnythingIsRegistered: here registrations are asynchronous RPCs that
// the exit may cut short, the stack's own included.)
func TestBadConfigIsReportedKeyByKeyAndBails(t *testing.T) {
	engine := &fakeEngine{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	pulumirpc.RegisterEngineServer(server, engine)
	pulumirpc.RegisterResourceMonitorServer(server, fakeMonitor{engine: engine})
	go func() { _ = server.Serve(lis) }()
	t.Cleanup(server.Stop)

	_, values, err := stackconfig.Load(".", "dev")
	if err != nil {
		t.Fatal(err)
	}
	bad := values.With(map[string]string{"replicas": "2", "zone": "moon"})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), runMainEnv+"=1",
		"PULUMI_MONITOR="+lis.Addr().String(), "PULUMI_ENGINE="+lis.Addr().String(),
		"PULUMI_PROJECT=loklak-dumps", "PULUMI_STACK=dev", "PULUMI_DRY_RUN=true",
		"PULUMI_CONFIG="+bad.EngineJSON("loklak-dumps"))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != constant.ExitStatusLoggedError {
		t.Fatalf("exit: %v, want status %d\n%s", err, constant.ExitStatusLoggedError, out)
	}

	engine.mu.Lock()
	defer engine.mu.Unlock()
	var errorsLogged []string
	for _, l := range engine.logs {
		if strings.Contains(l.GetMessage(), "unhandled") {
			t.Errorf("diagnostic frames the config error as unhandled: %q", l.GetMessage())
		}
		if l.GetSeverity() == pulumirpc.LogSeverity_ERROR {
			errorsLogged = append(errorsLogged, l.GetMessage())
		}
	}
	for _, l := range engine.logs {
		t.Logf("log %v: %q", l.GetSeverity(), l.GetMessage())
	}
	if len(errorsLogged) != 2 {
		t.Fatalf("error diagnostics = %q, want one per bad key (2)", errorsLogged)
	}
	for i, want := range []string{`config loklak-dumps:zone = "moon": `, `config loklak-dumps:replicas = "2": `} {
		if !strings.Contains(strings.Join(errorsLogged, "\n"), want) {
			t.Errorf("no diagnostic %d starting %q in %q", i, want, errorsLogged)
		}
	}
	for _, typ := range engine.registered {
		if typ != "pulumi:pulumi:Stack" {
			t.Errorf("registered %v, want nothing but the stack", engine.registered)
		}
	}
	if strings.Contains(string(out), "unhandled") {
		t.Errorf("the program printed an unhandled error:\n%s", out)
	}
}
