// registry: a read-only OCI distribution server for hack/e2e/cri. It serves the images of one
// OCI image layout to containerd on 127.0.0.1, since CRI's PullImage always asks a registry and
// none is reachable here. containerd's hosts.toml sends each registry name here with the name
// as a path prefix (override_path), so a request reads /v2/HOST/REPO/manifests/TAG, matched
// against the layout's "org.opencontainers.image.ref.name" annotations (HOST/REPO:TAG).
//
// Usage: registry LAYOUT_DIR ADDR_FILE   (listens on a free port, writes host:port to ADDR_FILE)
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
}

type server struct {
	dir       string
	manifests map[string]descriptor // by "NAME:TAG" and by digest
}

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: registry LAYOUT_DIR ADDR_FILE")
	}
	s := &server{dir: os.Args[1], manifests: map[string]descriptor{}}
	raw, err := os.ReadFile(filepath.Join(s.dir, "index.json"))
	if err != nil {
		log.Fatalf("read index.json: %v", err)
	}
	var index struct{ Manifests []descriptor }
	if err := json.Unmarshal(raw, &index); err != nil {
		log.Fatalf("parse index.json: %v", err)
	}
	for _, d := range index.Manifests {
		s.manifests[d.Annotations["org.opencontainers.image.ref.name"]] = d
		s.manifests[d.Digest] = d
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	// Written once listening, so that the caller can wait for the file.
	tmp := os.Args[2] + ".tmp"
	if err := os.WriteFile(tmp, []byte(ln.Addr().String()), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(tmp, os.Args[2]); err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.Serve(ln, s))
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log.Printf("%s %s", r.Method, r.URL.Path)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "read-only registry", http.StatusMethodNotAllowed)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/v2/")
	if path == "" || path == r.URL.Path {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		fmt.Fprint(w, "{}")
		return
	}
	if i := strings.LastIndex(path, "/manifests/"); i >= 0 {
		name, ref := path[:i], path[i+len("/manifests/"):]
		d, ok := s.manifests[ref]
		if !ok {
			d, ok = s.manifests[name+":"+ref]
		}
		if !ok {
			notFound(w, "MANIFEST_UNKNOWN", name+":"+ref)
			return
		}
		s.blob(w, r, d.Digest, d.MediaType)
		return
	}
	if i := strings.LastIndex(path, "/blobs/"); i >= 0 {
		s.blob(w, r, path[i+len("/blobs/"):], "application/octet-stream")
		return
	}
	notFound(w, "NAME_UNKNOWN", path)
}

func (s *server) blob(w http.ResponseWriter, r *http.Request, digest, mediaType string) {
	hex, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || strings.ContainsAny(hex, "/.") {
		notFound(w, "BLOB_UNKNOWN", digest)
		return
	}
	f, err := os.Open(filepath.Join(s.dir, "blobs", "sha256", hex))
	if err != nil {
		notFound(w, "BLOB_UNKNOWN", digest)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", digest)
	http.ServeContent(w, r, "", st.ModTime(), f)
}

func notFound(w http.ResponseWriter, code, what string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, "unknown: "+what)
}
