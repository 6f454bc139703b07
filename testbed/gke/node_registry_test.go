package gke

import (
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/loklak/loklak-dumps/testbed/dockerhub"
)

// containerd mirrors every registry the stand-in stands in for (docker.io and registry.k8s.io) to the
// stand-in's one address, so registry.k8s.io/kubectl:v1.33.13 and the Docker Hub images pull from it; and
// each catalog reference's registry is one of those mirrors.
func TestContainerdConfigMirrorsEveryStandInRegistry(t *testing.T) {
	var c map[string]any
	if _, err := toml.Decode(containerdConfig("/n", "127.0.0.1:5000"), &c); err != nil {
		t.Fatal(err)
	}
	mirrors, _ := lookup(c, "plugins", "io.containerd.grpc.v1.cri", "registry", "mirrors").(map[string]any)
	var names []string
	for host, m := range mirrors {
		names = append(names, host)
		if got := toStrings(lookup(m, "endpoint")); !slices.Equal(got, []string{"http://127.0.0.1:5000"}) {
			t.Errorf("%s mirror endpoints = %q, want the stand-in's", host, got)
		}
	}
	slices.Sort(names)
	want := slices.Sorted(slices.Values(dockerhub.Hosts))
	if !slices.Equal(names, want) {
		t.Errorf("mirrors for %q, want %q (dockerhub.Hosts)", names, want)
	}
	if _, ok := mirrors["registry.k8s.io"]; !ok {
		t.Error(`no mirror for "registry.k8s.io": registry.k8s.io/kubectl would be pulled from the real registry`)
	}
	for _, e := range dockerhub.Catalog {
		ref, err := name.NewTag(e.Ref)
		if err != nil {
			t.Fatal(err)
		}
		host := strings.Replace(ref.RegistryStr(), name.DefaultRegistry, "docker.io", 1)
		if _, ok := mirrors[host]; !ok {
			t.Errorf("%s is on %s, which containerd does not mirror to the stand-in", e.Ref, host)
		}
	}
}
