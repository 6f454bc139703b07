// Command pause is the process of a pod sandbox's pause container, for the images built by
// testbed/loklak/image (no registry can serve registry.k8s.io/pause here). Like the upstream pause it
// holds the pod's namespaces open, reaps the zombies of a shared PID namespace, and exits 0 on SIGTERM
// or SIGINT. It is built statically (CGO_ENABLED=0) and is the only file in its image.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("pause (loklak-standin)")
		return
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	if os.Getpid() != 1 {
		// after Notify, so that whoever reads this line knows a SIGTERM now ends pause with status 0
		fmt.Fprintln(os.Stderr, "pause: warning: not running as PID 1")
	}
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			fmt.Fprintf(os.Stderr, "pause: shutting down, got signal %v\n", sig)
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every child that has exited, without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
