package gke

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// EphemeralAddressPrefix is where the control plane takes LoadBalancer addresses from (TEST-NET-3: never
// routed): the first Service gets .20, the next .21, and so on.
const EphemeralAddressPrefix = "203.0.113."

// serveLoadBalancers plays the part of GKE's service controller: each Service of type LoadBalancer gets
// an address in status.loadBalancer.ingress, which is what pulumi-kubernetes waits for before a
// LoadBalancer Service counts as created: the one it asks for in spec.loadBalancerIP (a static address),
// or else a new ephemeral one, so a recreated Service gets another address, as on GKE. No traffic is
// routed; only the status is written. It follows the Services with `kubectl get --watch` and starts the
// watch again when it ends (an API server restart ends it) until ctx is done.
func (cp *ControlPlane) serveLoadBalancers(ctx context.Context) {
	next := 20
	for ctx.Err() == nil {
		cp.watchLoadBalancers(ctx, &next)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second): // the API server is down: try again, as a controller would
		}
	}
}

func (cp *ControlPlane) watchLoadBalancers(ctx context.Context, next *int) {
	cmd := exec.CommandContext(ctx, cp.tools.Path("kubectl"), "--kubeconfig="+cp.Kubeconfig,
		"get", "services", "--all-namespaces", "--watch", "-o",
		`jsonpath={.metadata.namespace}|{.metadata.name}|{.spec.type}|{.spec.loadBalancerIP}|{.status.loadBalancer.ingress[0].ip}{"\n"}`)
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
		f := strings.Split(lines.Text(), "|")
		if len(f) != 5 || f[2] != "LoadBalancer" || f[4] != "" {
			continue // not a LoadBalancer, or it has its address
		}
		ip := f[3]
		if ip == "" {
			ip = fmt.Sprintf("%s%d", EphemeralAddressPrefix, *next)
			*next++
		}
		status := fmt.Sprintf(`{"status":{"loadBalancer":{"ingress":[{"ip":%q}]}}}`, ip)
		// A failure (the Service went away meanwhile) is seen again at the next event or restart.
		_, _ = cp.Kubectl(ctx, "-n", f[0], "patch", "service", f[1], "--subresource=status", "--type=merge", "-p", status)
	}
}
