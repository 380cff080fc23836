package archtest

import (
	"slices"
	"strings"
	"testing"
)

const beam = "github.com/apache/beam/"

// beamImporters may import Beam directly: the transforms, the pipelines that
// assemble them, the Beam connectors and the runner setup. Everything else
// reaches Beam, if at all, through them.
var beamImporters = []string{"transforms", "pipelines", "io/kafkaio", "io/storeio", "io/textlines", "runners"}

// beamFree may not have Beam among their dependencies at all: the domain, the
// store contract and backends, the services and the query API build and start
// without the Beam SDK.
var beamFree = []string{"domain", "io/store", "services", "queryapi"}

// beamFreeExceptions are packages under beamFree that still depend on Beam,
// each with the reason; a package leaves this list once it no longer does.
var beamFreeExceptions = map[string]string{
	// Runs replays (a Beam pipeline) inside the serving process, the only way
	// to replay an embedded Pebble store the server holds open.
	"services/replayadmin": "runs pipelines.Replay in the serving process",
}

func isBeam(importPath string) bool { return strings.HasPrefix(importPath, beam) }

func inAny(p string, dirs []string) bool {
	return slices.ContainsFunc(dirs, func(d string) bool { return under(p, d) })
}

func TestBeamImports(t *testing.T) {
	for _, p := range listPackages(t, repoRoot(t)) {
		r, ok := rel(p.ImportPath)
		if !ok || inAny(r, beamImporters) {
			continue
		}
		for _, imp := range p.Imports {
			if isBeam(imp) {
				t.Errorf("%s imports %s: only %v may import Beam directly", r, imp, beamImporters)
			}
		}
	}
}

func TestBeamFreePackages(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range listPackages(t, repoRoot(t)) {
		r, ok := rel(p.ImportPath)
		if !ok || !inAny(r, beamFree) {
			continue
		}
		i := slices.IndexFunc(p.Deps, isBeam)
		_, excepted := beamFreeExceptions[r]
		seen[r] = i >= 0
		switch {
		case i >= 0 && !excepted:
			t.Errorf("%s depends on %s (go list -deps): packages under %v must build without Beam", r, p.Deps[i], beamFree)
		case i < 0 && excepted:
			t.Errorf("%s no longer depends on Beam: remove it from beamFreeExceptions", r)
		}
	}
	for r := range beamFreeExceptions {
		if _, ok := seen[r]; !ok {
			t.Errorf("beamFreeExceptions names %s, which is not a package under %v", r, beamFree)
		}
	}
}
