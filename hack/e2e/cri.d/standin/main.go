// standin: the programs of critest's images, for images built locally from busybox-static
// (hack/e2e/cri). What it does depends on the name it runs as:
//
//	pause       the sandbox's pause: reaps children, exits 0 on SIGINT/SIGTERM
//	nginx       serves HTTP 200 on $PORT (80), writes its pid to /var/run/nginx.pid
//	httpd       serves HTTP 200 on $PORT (80), says "httpd" on stdout
//	nonewprivs  (installed setuid root) prints "Effective uid: N"
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
)

func main() {
	name := filepath.Base(os.Args[0])
	switch name {
	case "pause":
		pause()
	case "nginx", "httpd":
		serve(name)
	case "nonewprivs":
		fmt.Printf("Effective uid: %d\n", os.Geteuid())
	default:
		log.Fatalf("standin: unknown program name %q", name)
	}
}

func pause() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

func serve(name string) {
	port := os.Getenv("PORT")
	if port == "" {
		port = "80"
	}
	if name == "nginx" {
		if err := os.WriteFile("/var/run/nginx.pid", []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			log.Fatalf("nginx: write pid file: %v", err)
		}
	}
	fmt.Printf("%s: serving HTTP on port %s\n", name, port)
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "<html><body>%s stand-in</body></html>\n", name)
	})
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
