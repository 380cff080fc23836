// Command unquoteid is the PROCESS environment command to give the prism job
// service: it runs Beam's Go boot program (the path in $BEAM_BOOT) with the
// arguments prism passes, minus the single quotes prism puts around --id.
//
// Prism 2.73.0 starts a PROCESS worker with "--id='<id>'" and no shell in
// between (runners/prism/internal/environments.go, processEnvironment), so
// the boot program takes the quotes as part of the id, sends it as its
// worker_id, and prism refuses it: "worker_id: '<quoted id>' read from
// context metadata but not registered in worker pool". Beam's Java
// ProcessEnvironmentFactory, which Flink's job server uses, passes the id
// unquoted and needs no such step.
package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

func main() {
	boot := os.Getenv("BEAM_BOOT")
	if boot == "" {
		fmt.Fprintln(os.Stderr, "unquoteid: BEAM_BOOT (the boot program's path) is not set")
		os.Exit(2)
	}
	args := []string{boot}
	for _, a := range os.Args[1:] {
		if id, ok := strings.CutPrefix(a, "--id="); ok && len(id) >= 2 && id[0] == '\'' && id[len(id)-1] == '\'' {
			a = "--id=" + id[1:len(id)-1]
		}
		args = append(args, a)
	}
	// Replace this process: the job service's handle on it (cancel, exit
	// status) is then the boot program's.
	err := syscall.Exec(boot, args, os.Environ())
	fmt.Fprintf(os.Stderr, "unquoteid: exec %s: %v\n", boot, err)
	os.Exit(1)
}
