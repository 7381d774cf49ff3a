package redisstore

import (
	"encoding/json"
	"os/exec"
	"slices"
	"testing"
)

// TestModuleRequires: the module's go.mod requires directly only what the
// store's code imports, gatehouse and go-redis, so that a user's module graph
// gets nothing else from it (a benchmark's peer, say, lives in the benchmarks
// module).
func TestModuleRequires(t *testing.T) {
	out, err := exec.Command("go", "mod", "edit", "-json").Output()
	if err != nil {
		t.Skipf("go mod edit -json: %v", err)
	}
	var mod struct {
		Require []struct {
			Path     string
			Indirect bool
		}
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatal(err)
	}
	var direct []string
	for _, r := range mod.Require {
		if !r.Indirect {
			direct = append(direct, r.Path)
		}
	}
	slices.Sort(direct)
	if want := []string{"github.com/gatehouse-go/gatehouse", "github.com/redis/go-redis/v9"}; !slices.Equal(direct, want) {
		t.Errorf("go.mod requires %q directly, want %q", direct, want)
	}
}
