package kubedriver

import (
	"strings"
	"testing"
)

func TestScanTasks(t *testing.T) {
	const cid = "4136241f0c9e2b7a5d8e1f3a6b9c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b3c"
	text := `# HELP container_threads Number of threads running inside the container
# TYPE container_threads gauge
container_threads{container="",id="/kubepods/burstable/pod0a98",image="",name="",namespace="ns",pod="p"} 7 1796229650641
container_threads{container="",id="/kubepods/burstable/pod0a98/607982aa",image="",name="",namespace="",pod=""} 1 1796229650641
container_threads{container="",id="/kubepods/burstable/pod0a98/` + cid + `",image="",name="",namespace="",pod=""} 6 1796229650641
container_threads_max{container="",id="/kubepods/burstable/pod0a98/` + cid + `",image="",name="",namespace="",pod=""} 256 1796229650641
`
	n, ok, err := scanTasks(strings.NewReader(text), cid)
	if err != nil || !ok || n != 6 {
		t.Errorf("scanTasks(cgroupfs) = %d, %v, %v; want 6, true, nil", n, ok, err)
	}
	systemd := `container_threads{id="/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a98.slice/cri-containerd-` + cid + `.scope",pod="x\"y"} 3`
	if n, ok, _ := scanTasks(strings.NewReader(systemd), cid); !ok || n != 3 {
		t.Errorf("scanTasks(systemd) = %d, %v; want 3, true", n, ok)
	}
	if _, ok, _ := scanTasks(strings.NewReader(text), cid[:60]); ok {
		t.Errorf("scanTasks found a series of a container whose id only starts with the one asked")
	}
}

func TestParseLabels(t *testing.T) {
	got := parseLabels(`a="1",b="x\"y\\z",c="line\nnext", d=""`)
	want := map[string]string{"a": "1", "b": `x"y\z`, "c": "line\nnext", "d": ""}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("parseLabels: %s = %q, want %q (all: %q)", k, got[k], v, got)
		}
	}
}
