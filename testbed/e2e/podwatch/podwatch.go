// Package podwatch follows pods through `kubectl get pods --watch`, event by event (no sampling), and
// keeps the largest number that held something at once: the end-to-end tests' proof that never two loklak
// pods use the dumps disk. What "holding" means is the caller's: on kwok's nodes a pod holds the claim
// once it is scheduled (kwok mounts nothing); on a real node, while its container runs.
package podwatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"sync"
)

// Pod is what a predicate sees of a pod in a watch event.
type Pod struct {
	Namespace, Name, NodeName, Phase string
	// Deleted: the event is the pod's deletion.
	Deleted bool
	// Running: some container of the pod is in state running.
	Running bool
}

// Scheduled holds from the pod's scheduling to its end (a terminal phase or its deletion).
func Scheduled(p Pod) bool {
	return !p.Deleted && p.NodeName != "" && p.Phase != "Succeeded" && p.Phase != "Failed"
}

// ContainerRunning holds while one of the pod's containers runs, as the kubelet reports it.
func ContainerRunning(p Pod) bool { return !p.Deleted && p.Running }

// Watch is a running `kubectl get pods --watch`.
type Watch struct {
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	holding map[string]bool // namespace/name of the pods holding now
	most    int             // the most at once since the start, or since the last Window
	seen    map[string]bool // namespace/name of every pod that held
	err     error
}

// Start watches the pods that match selector in every namespace, counting those in namespaces for which
// holds is true. kubectl is the kubectl binary, kubeconfig its --kubeconfig.
func Start(kubectl, kubeconfig, selector string, namespaces []string, holds func(Pod) bool) (*Watch, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig="+kubeconfig, "get", "pods", "--all-namespaces",
		"-l", selector, "--watch", "--output-watch-events", "-o", "json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	w := &Watch{cancel: cancel, done: make(chan struct{}), holding: map[string]bool{}, seen: map[string]bool{}}
	go func() {
		defer close(w.done)
		dec := json.NewDecoder(out)
		for {
			var ev event
			if err := dec.Decode(&ev); err != nil {
				if !errors.Is(err, io.EOF) && ctx.Err() == nil {
					w.mu.Lock()
					w.err = err
					w.mu.Unlock()
				}
				_ = cmd.Wait()
				return
			}
			p := ev.pod()
			if !slices.Contains(namespaces, p.Namespace) {
				continue
			}
			key := p.Namespace + "/" + p.Name
			w.mu.Lock()
			if holds(p) {
				w.holding[key] = true
				w.seen[key] = true
			} else {
				delete(w.holding, key)
			}
			w.most = max(w.most, len(w.holding))
			w.mu.Unlock()
		}
	}()
	return w, nil
}

// event is one line of `kubectl get --watch --output-watch-events -o json`.
type event struct {
	Type   string `json:"type"`
	Object struct {
		Metadata struct{ Namespace, Name string } `json:"metadata"`
		Spec     struct {
			NodeName string `json:"nodeName"`
		} `json:"spec"`
		Status struct {
			Phase             string `json:"phase"`
			ContainerStatuses []struct {
				State struct {
					Running *struct{} `json:"running"`
				} `json:"state"`
			} `json:"containerStatuses"`
		} `json:"status"`
	} `json:"object"`
}

func (ev event) pod() Pod {
	o := ev.Object
	p := Pod{Namespace: o.Metadata.Namespace, Name: o.Metadata.Name, NodeName: o.Spec.NodeName, Phase: o.Status.Phase,
		Deleted: ev.Type == "DELETED"}
	for _, c := range o.Status.ContainerStatuses {
		p.Running = p.Running || c.State.Running != nil
	}
	return p
}

// Window returns the most pods that held at once since the last Window (or the start), and starts a new
// window from the pods holding now. It fails if kubectl has stopped.
func (w *Watch) Window() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-w.done:
		return 0, fmt.Errorf("the pod watch ended: %w", w.err)
	default:
	}
	most := w.most
	w.most = len(w.holding)
	return most, nil
}

// Stop ends the watch and returns the most pods that held at once, and every pod that held.
func (w *Watch) Stop() (most int, seen []string, err error) {
	w.cancel()
	<-w.done
	if w.err != nil {
		return 0, nil, fmt.Errorf("watching pods: %w", w.err)
	}
	for k := range w.seen {
		seen = append(seen, k)
	}
	slices.Sort(seen)
	return w.most, seen, nil
}
