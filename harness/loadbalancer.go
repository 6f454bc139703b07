package harness

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// LoadBalancerIP is the address the control plane gives every LoadBalancer Service (TEST-NET-3: never routed).
const LoadBalancerIP = "203.0.113.20"

// serveLoadBalancers plays the part of GKE's service controller: each Service of type LoadBalancer gets
// LoadBalancerIP in status.loadBalancer.ingress, which is what pulumi-kubernetes waits for before a
// LoadBalancer Service counts as created. No traffic is routed; only the status is written. It follows
// the Services with `kubectl get --watch` and starts the watch again when it ends (an API server
// restart ends it) until ctx is done.
func (cp *ControlPlane) serveLoadBalancers(ctx context.Context) {
	for ctx.Err() == nil {
		cp.watchLoadBalancers(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second): // the API server is down: try again, as a controller would
		}
	}
}

func (cp *ControlPlane) watchLoadBalancers(ctx context.Context) {
	cmd := exec.CommandContext(ctx, cp.tools.Path("kubectl"), "--kubeconfig="+cp.Kubeconfig,
		"get", "services", "--all-namespaces", "--watch", "-o",
		`jsonpath={.metadata.namespace} {.metadata.name} {.spec.type} {.status.loadBalancer.ingress[0].ip}{"\n"}`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return
	}
	if err := cmd.Start(); err != nil {
		return
	}
	defer func() { _ = cmd.Wait() }() // the watch's end is expected (restart, Stop); nothing to report
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		if len(f) != 3 || f[2] != "LoadBalancer" {
			continue // not a LoadBalancer, or it already has an address
		}
		status := fmt.Sprintf(`{"status":{"loadBalancer":{"ingress":[{"ip":%q}]}}}`, LoadBalancerIP)
		// A failure (the Service went away meanwhile) is seen again at the next event or restart.
		_, _ = cp.Kubectl(ctx, "-n", f[0], "patch", "service", f[1], "--subresource=status", "--type=merge", "-p", status)
	}
}
