// Command bench measures what this project costs its users and prints one table: the program under
// mocks, building it, a preview and an update on the real engine against the loopback control plane,
// each beside its floor (an empty program) or the hand-made way (kubectl apply + kubectl wait).
// Every figure is the median of several runs with min and max; every ratio compares runs made in this
// invocation. Run it with `make bench`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/loklak/loklak-dumps/internal/recorder"
	"github.com/loklak/loklak-dumps/internal/stackconfig"
	"github.com/loklak/loklak-dumps/testbed/gke"
	"github.com/loklak/loklak-dumps/testbed/harness"
	"github.com/loklak/loklak-dumps/testbed/toolchain"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

const project = "loklak-dumps"

var (
	runs      = flag.Int("runs", 20, "runs per measurement (program runs use 10x): enough to see the tail")
	coldBuild = flag.Bool("cold-build", true, "also time a go build with an empty build cache (minutes)")
	nodeOnly  = flag.Bool("real-node-only", false, "measure only the real node's rows (a few minutes)")
)

func main() {
	flag.Parse()
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// result is one measured row.
type result struct {
	name  string
	times []time.Duration
	note  string
}

func (r result) median() time.Duration {
	s := slices.Clone(r.times)
	slices.Sort(s)
	return s[len(s)/2]
}

func (r result) sorted() []time.Duration {
	s := slices.Clone(r.times)
	slices.Sort(s)
	return s
}

func (r result) max() time.Duration { s := r.sorted(); return s[len(s)-1] }

// p90 is the nearest-rank 90th percentile: the tail a user meets one time in ten.
func (r result) p90() time.Duration {
	s := r.sorted()
	return s[(len(s)*9+9)/10-1]
}

func (r result) row() string {
	s := r.sorted()
	return fmt.Sprintf("| %s | %d | %s | %s | %s | %s | %s |", r.name, len(s), ms(r.median()), ms(s[0]), ms(r.p90()), ms(s[len(s)-1]), r.note)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func measure(name string, n int, f func() error) (result, error) {
	return measureThenReset(name, n, f, func() error { return nil })
}

// measureThenReset times f only; reset runs after each run, untimed, to restore the starting point.
func measureThenReset(name string, n int, f, reset func() error) (result, error) {
	r := result{name: name}
	for range n {
		start := time.Now()
		if err := f(); err != nil {
			return r, fmt.Errorf("%s: %w", name, err)
		}
		r.times = append(r.times, time.Since(start))
		if err := reset(); err != nil {
			return r, fmt.Errorf("%s (reset): %w", name, err)
		}
	}
	return r, nil
}

func run(ctx context.Context) error {
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	var rows []result
	var targets []string
	if *nodeOnly {
		tools, err := toolchain.ToolsFromEnv()
		if err != nil {
			return err
		}
		work, err := os.MkdirTemp("", "loklak-bench-")
		if err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(work) }() // a temp dir; nothing to do if it lingers
		_, values, err := stackconfig.Load(repo, "local")
		if err != nil {
			return err
		}
		if rows, err = realNodeRows(ctx, tools, repo, work, values); err != nil {
			return err
		}
		printRows(rows)
		return nil
	}
	target := func(what, measured, limit string, met bool) {
		verdict := "met"
		if !met {
			verdict = "**missed**"
		}
		targets = append(targets, fmt.Sprintf("| %s | %s | %s | %s |", what, measured, limit, verdict))
	}

	// 1. The program under mocks.
	for _, stack := range []string{"dev", "prod"} {
		_, values, err := stackconfig.Load(repo, stack)
		if err != nil {
			return err
		}
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		r, err := measure("program under mocks, "+stack, 10**runs, func() error {
			_, err := recorder.RunProgram(project, stack, values, recorder.Cluster{}.Program)
			return err
		})
		if err != nil {
			return err
		}
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		r.note = fmt.Sprintf("%.1f MB allocated per run; target < 1 s", float64(after.TotalAlloc-before.TotalAlloc)/float64(len(r.times))/1e6)
		rows = append(rows, r)
	}

	// 2. Building the program: what `pulumi preview` with runtime go compiles before every run.
	work, err := os.MkdirTemp("", "loklak-bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(work) }() // a temp dir; nothing to do if it lingers
	bin := filepath.Join(work, "loklak-dumps")
	build := func(env ...string) error {
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = os.Stderr
		return cmd.Run()
	}
	if *coldBuild {
		cache := filepath.Join(work, "gocache")
		r, err := measure("go build, empty build cache (cold)", 1, func() error { return build("GOCACHE=" + cache) })
		if err != nil {
			return err
		}
		r.note = "modules already downloaded; once per machine"
		rows = append(rows, r)
	}
	if err := build(); err != nil {
		return err
	}
	r, err := measure("go build, nothing changed (warm)", *runs, func() error { return build() })
	if err != nil {
		return err
	}
	r.note = "what runtime go pays on every preview"
	rows = append(rows, r)
	r, err = measure("go build after a one-line change (warm)", *runs, func() error {
		return touchAndBuild(filepath.Join(repo, "infra", "stack.go"), build)
	})
	if err != nil {
		return err
	}
	r.note = "target < 10 s"
	rows = append(rows, r)
	rows = append(rows, result{name: "binary size", times: []time.Duration{0}, note: fileSize(bin)})

	// 3 and 4. The real engine against the loopback control plane.
	tools, err := toolchain.ToolsFromEnv()
	if err != nil {
		return err
	}
	cp, err := gke.StartControlPlane(ctx, tools, filepath.Join(work, "cluster"), gke.ControlPlaneOptions{Zone: "us-central1-a"})
	if err != nil {
		return err
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: stopping the control plane:", err)
		}
	}()
	_, values, err := stackconfig.Load(repo, "local")
	if err != nil {
		return err
	}
	secrets := map[string]string{"kubeconfig": cp.Kubeconfig}
	drv := harness.Driver{Tools: tools, RepoDir: repo, StateDir: filepath.Join(work, "pulumi"), Passphrase: "bench"}
	stack, err := drv.Stack(ctx, "bench", values, secrets)
	if err != nil {
		return err
	}
	floorDrv := drv
	floorDrv.Program = emptyProgram
	floor, err := floorDrv.Stack(ctx, "floor", values, secrets)
	if err != nil {
		return err
	}
	oneDrv := drv
	var configValue string
	oneDrv.Program = oneConfigMap(&configValue)
	one, err := oneDrv.Stack(ctx, "one-resource", values, secrets)
	if err != nil {
		return err
	}

	// Update convergence: pulumi up from empty vs kubectl apply + kubectl wait, same objects.
	manifests, err := localManifests(values)
	if err != nil {
		return err
	}
	ns := values["namespace"]
	up, err := measureThenReset("pulumi up from empty → PVC Bound, Deployment Available", *runs,
		func() error { _, err := stack.Up(ctx); return err },
		func() error { _, err := stack.Destroy(ctx); return err })
	if err != nil {
		return err
	}
	rows = append(rows, up)
	kubectlUp, err := measureThenReset("kubectl apply + kubectl wait, same objects", *runs,
		func() error { return kubectlApplyAndWait(ctx, cp, manifests, ns) },
		func() error {
			_, err := cp.KubectlInput(ctx, manifests, "delete", "--wait=true", "-f", "-")
			return err
		})
	if err != nil {
		return err
	}
	rows = append(rows, kubectlUp)
	floorUp, err := measureThenReset("pulumi up from empty, empty program + same provider (the engine's floor)", *runs,
		func() error { _, err := floor.Up(ctx); return err },
		func() error { _, err := floor.Destroy(ctx); return err })
	if err != nil {
		return err
	}
	rows = append(rows, floorUp)
	breakdown, err := upBreakdown(ctx, stack)
	if err != nil {
		return err
	}
	target("up from empty: max ≤ 1.5× median", fmt.Sprintf("%.2f×", float64(up.max())/float64(up.median())), "≤ 1.5×",
		float64(up.max()) <= 1.5*float64(up.median()))
	upLimit := floorUp.median() + kubectlUp.median() + time.Second
	target("up from empty: median ≤ engine floor + kubectl apply and wait + 1 s", ms(up.median()), "≤ "+ms(upLimit), up.median() <= upLimit)

	// Image-only update, after a fresh up.
	if _, err := stack.Up(ctx); err != nil {
		return err
	}
	images := []string{"loklak/loklak_server:bench-a", "loklak/loklak_server:bench-b"}
	i := 0
	imgUp, err := measure("pulumi up, image-only update → new ReplicaSet Available", *runs, func() error {
		i++
		s, err := drv.Stack(ctx, "bench", values.With(map[string]string{"image": images[i%2]}), nil)
		if err != nil {
			return err
		}
		_, err = s.Up(ctx)
		return err
	})
	if err != nil {
		return err
	}
	rows = append(rows, imgUp)
	if _, err := stack.Destroy(ctx); err != nil {
		return err
	}
	configValue = "0"
	if _, err := one.Up(ctx); err != nil {
		return err
	}
	changes := 0
	oneUp, err := measure("pulumi up, one ConfigMap's data changed (the engine's update floor)", *runs, func() error {
		changes++
		configValue = strconv.Itoa(changes) // a new value each run: always exactly one update
		_, err := one.Up(ctx)
		return err
	})
	if err != nil {
		return err
	}
	rows = append(rows, oneUp)
	if _, err := one.Destroy(ctx); err != nil {
		return err
	}
	imgLimit := oneUp.median() + 500*time.Millisecond
	target("image update: median ≤ update floor + 0.5 s", ms(imgUp.median()), "≤ "+ms(imgLimit), imgUp.median() <= imgLimit)
	if err := kubectlApplyAndWait(ctx, cp, manifests, ns); err != nil {
		return err
	}
	j := 0
	kubectlImg, err := measure("kubectl set image + rollout status", *runs, func() error {
		j++
		if _, err := cp.Kubectl(ctx, "-n", ns, "set", "image", "deployment/loklak-server", "loklak="+images[j%2]); err != nil {
			return err
		}
		_, err := cp.Kubectl(ctx, "-n", ns, "rollout", "status", "deployment/loklak-server", "--timeout=5m")
		return err
	})
	if err != nil {
		return err
	}
	rows = append(rows, kubectlImg)
	if _, err := cp.KubectlInput(ctx, manifests, "delete", "--wait=true", "-f", "-"); err != nil {
		return err
	}

	// Preview latency, warm: our stack (deployed) vs an empty program with the same provider.
	if _, err := stack.Up(ctx); err != nil {
		return err
	}
	if _, err := floor.Up(ctx); err != nil {
		return err
	}
	prev, err := measure("pulumi preview, local stack (deployed, warm)", *runs, func() error { _, err := stack.Preview(ctx); return err })
	if err != nil {
		return err
	}
	rows = append(rows, prev)
	floorPrev, err := measure("pulumi preview, empty program + same provider", *runs, func() error { _, err := floor.Preview(ctx); return err })
	if err != nil {
		return err
	}
	rows = append(rows, floorPrev)
	x := float64(prev.median()) / float64(floorPrev.median())
	target("warm preview: median ≤ 1.3× the empty-program floor", fmt.Sprintf("%.2f×", x), "≤ 1.3×", x <= 1.3)
	if _, err := stack.Destroy(ctx); err != nil {
		return err
	}

	// 5. On a real node, after the kwok control plane has stopped (one control plane at a time).
	if err := cp.Stop(); err != nil {
		return err
	}
	nodeRows, err := realNodeRows(ctx, tools, repo, work, values)
	if err != nil {
		return err
	}
	rows = append(rows, nodeRows...)

	fmt.Printf("\nloklak-dumps benchmarks, %s, %d cores, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.Version())
	printRows(rows)
	fmt.Printf("\n| Target (same run) | measured | limit | |\n|---|---|---|---|\n%s\n", strings.Join(targets, "\n"))
	fmt.Printf("\nWhere one more up from empty spends its time, step by step (times as the Automation API's event stream delivers the engine's events):\n\n%s\n", breakdown)
	fmt.Printf("\npeak RSS of this process: %s\n", peakRSS())
	return nil
}

// printRows prints the measures as a Markdown table.
func printRows(rows []result) {
	fmt.Println("| Measure | runs | median | min | p90 | max | note |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, r := range rows {
		if r.name == "binary size" {
			fmt.Printf("| binary size | | | | | | %s |\n", r.note)
			continue
		}
		fmt.Println(r.row())
	}
}

// realNodeRows measures, on a control plane with a real node (testbed/gke, node.go), `pulumi up` from
// empty until loklak's pod is really Ready (image pulled from the Docker Hub stand-in, disk attached and
// mounted by the CSI stand-in, /api/status.json answering the probes) beside kubectl apply + wait on the
// same objects. Fewer runs than the kwok rows: each takes tens of seconds, most of it loklak's start and
// the probes' period.
func realNodeRows(ctx context.Context, tools toolchain.Tools, repo, work string, values stackconfig.Values) ([]result, error) {
	gceDir := filepath.Join(work, "node-gce")
	cp, err := gke.StartControlPlane(ctx, tools, filepath.Join(work, "node-cluster"), gke.ControlPlaneOptions{
		Zone: values["zone"], RealNode: &gke.RealNodeOptions{Project: values["gcpProject"], GCEDir: gceDir},
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: stopping the real node:", err)
		}
	}()
	// The local stack's external disk, made outside the stack as the local run makes it.
	if _, _, err := harness.PutExternalDisk(gceDir, values); err != nil {
		return nil, err
	}
	drv := harness.Driver{Tools: tools, RepoDir: repo, StateDir: filepath.Join(work, "node-pulumi"), Passphrase: "bench", GCEDir: gceDir}
	stack, err := drv.Stack(ctx, "bench-node", values, map[string]string{"kubeconfig": cp.Kubeconfig})
	if err != nil {
		return nil, err
	}
	manifests, err := localManifests(values)
	if err != nil {
		return nil, err
	}
	runs := max(3, *runs/4)
	up, err := measureThenReset("real node: pulumi up from empty → loklak's pod Ready (pull, attach, mount, start)", runs,
		func() error { _, err := stack.Up(ctx); return err },
		func() error { _, err := stack.Destroy(ctx); return err })
	if err != nil {
		return nil, err
	}
	ns := values["namespace"]
	kubectlUp, err := measureThenReset("real node: kubectl apply + kubectl wait, same objects", runs,
		func() error { return kubectlApplyAndWait(ctx, cp, manifests, ns) },
		func() error {
			_, err := cp.KubectlInput(ctx, manifests, "delete", "--wait=true", "-f", "-")
			return err
		})
	if err != nil {
		return nil, err
	}
	up.note = "the startup probe asks every 10 s; loklak's stand-in answers after 5 s"
	return []result{up, kubectlUp}, nil
}

// emptyProgram is the preview floor: the same explicit Kubernetes provider and nothing else.
func emptyProgram(ctx *pulumi.Context) error {
	_, err := kubernetes.NewProvider(ctx, "cluster", &kubernetes.ProviderArgs{Kubeconfig: config.GetSecret(ctx, "kubeconfig")})
	return err
}

// upBreakdown runs one up from empty (then destroys it) and returns a table of its steps: when each
// began after the up started, and how long the provider took on it (create and await).
func upBreakdown(ctx context.Context, stack auto.Stack) (string, error) {
	type step struct {
		name       string
		start, end time.Duration
	}
	var steps []*step
	byURN := map[string]*step{}
	ch := make(chan events.EngineEvent)
	done := make(chan struct{})
	begin := time.Now()
	go func() {
		defer close(done)
		for ev := range ch {
			at := time.Since(begin)
			switch {
			case ev.ResourcePreEvent != nil && ev.ResourcePreEvent.Metadata.Op != "same":
				m := ev.ResourcePreEvent.Metadata
				s := &step{name: fmt.Sprintf("%s %s", strings.TrimPrefix(m.Type, "kubernetes:"), m.URN[strings.LastIndex(m.URN, "::")+2:]), start: at}
				steps, byURN[m.URN] = append(steps, s), s
			case ev.ResOutputsEvent != nil:
				if s := byURN[ev.ResOutputsEvent.Metadata.URN]; s != nil {
					s.end = at
				}
			}
		}
	}()
	_, err := stack.Up(ctx, optup.EventStreams(ch))
	<-done
	total := time.Since(begin)
	if err != nil {
		return "", err
	}
	if _, err := stack.Destroy(ctx); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("| step | begins at | takes |\n|---|---|---|\n")
	for _, s := range steps {
		if s.end > s.start {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", s.name, ms(s.start), ms(s.end-s.start))
		}
	}
	fmt.Fprintf(&b, "| (the whole up, with CLI start and the final checkpoint) | | %s |", ms(total))
	return b.String(), nil
}

// oneConfigMap is the update floor: the same explicit provider and one ConfigMap whose data is *value
// when the program runs, so an up after changing it updates exactly one trivial resource.
func oneConfigMap(value *string) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		p, err := kubernetes.NewProvider(ctx, "cluster", &kubernetes.ProviderArgs{Kubeconfig: config.GetSecret(ctx, "kubeconfig")})
		if err != nil {
			return err
		}
		_, err = corev1.NewConfigMap(ctx, "floor", &corev1.ConfigMapArgs{
			Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("bench-floor"), Namespace: pulumi.String("default")},
			Data:     pulumi.StringMap{"value": pulumi.String(*value)},
		}, pulumi.Provider(p))
		return err
	}
}

// localManifests are the local stack's Kubernetes objects as the program sends them, as a kubectl List.
func localManifests(values stackconfig.Values) ([]byte, error) {
	rec, err := recorder.RunProgram(project, "local", values, recorder.Cluster{}.Program)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": rec.Manifests()})
}

// kubectlApplyAndWait is the hand-made way: apply, then wait for the conditions pulumi up waits for.
func kubectlApplyAndWait(ctx context.Context, cp *gke.ControlPlane, manifests []byte, ns string) error {
	if _, err := cp.KubectlInput(ctx, manifests, "apply", "-f", "-"); err != nil {
		return err
	}
	if _, err := cp.Kubectl(ctx, "-n", ns, "wait", "--for=jsonpath={.status.phase}=Bound", "pvc/dump", "--timeout=5m"); err != nil {
		return err
	}
	_, err := cp.Kubectl(ctx, "-n", ns, "wait", "--for=condition=Available", "deployment/loklak-server", "--timeout=5m")
	return err
}

// touchAndBuild appends a comment line to file, builds, and restores the file; a failed restore is an
// error, never a silently modified source file.
func touchAndBuild(file string, build func(...string) error) (err error) {
	orig, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	defer func() {
		if restore := os.WriteFile(file, orig, 0o644); restore != nil {
			err = errors.Join(err, fmt.Errorf("restore %s: %w", file, restore))
		}
	}()
	if err := os.WriteFile(file, append(slices.Clone(orig), []byte(fmt.Sprintf("\n// bench %d\n", time.Now().UnixNano()))...), 0o644); err != nil {
		return err
	}
	return build()
}

func fileSize(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%.0f MB", float64(st.Size())/1e6)
}

func peakRSS() string {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%.0f MB", float64(ru.Maxrss)/1024)
}
