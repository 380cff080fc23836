package main

import (
	"flag"
	"fmt"
	"strings"
)

// newFlagSet returns a FlagSet for a subcommand whose errors are returned, not
// printed-and-exited.
func newFlagSet(env *cliEnv, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("adclick "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	return fs
}

// parseFlags parses args, then fills every flag not given on the command line
// from its environment variable ADCLICK_<NAME> (dashes become underscores).
// Values from either source go through the flag's own validation.
func parseFlags(fs *flag.FlagSet, env *cliEnv, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		name := EnvName(f.Name)
		if v := env.getenv(name); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%w: %s=%q: %v", errUsage, name, v, e)
			}
		}
	})
	return err
}

// EnvName is the environment variable for a flag name.
func EnvName(flagName string) string {
	return "ADCLICK_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}
