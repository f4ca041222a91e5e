// pause is the sandbox ("infra") container of the test node's pods: it holds the pod's
// namespaces open, reaps the zombies that end up with it as PID 1, and exits on SIGTERM/SIGINT.
// The test node reaches no container registry, so it cannot pull registry.k8s.io/pause;
// tests/cluster/images.py builds this into a one-file image instead.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		// Reap every child that has exited; SIGCHLDs coalesce, so one signal may stand for many.
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
