// standin: the programs of critest's images, for images built locally from busybox-static
// (hack/e2e/cri). What it does depends on the name it runs as:
//
//	pause       the sandbox's pause: reaps children, exits 0 on SIGINT/SIGTERM
//	nginx       serves HTTP 200 on $PORT (80), writes its pid to /var/run/nginx.pid; its command
//	            line reads "nginx: master process ..." as nginx's does
//	httpd       serves HTTP 200 on $PORT (80), says "httpd" on stdout
//	nonewprivs  (installed setuid root) prints "Effective uid: N"
//	pgrep NAME  prints the pids of the processes named NAME (busybox-static has no pgrep)
//	ipcs -m     lists the SysV shared memory segments (busybox-static has no ipcs)
package main

import (
	"bufio"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	name := filepath.Base(os.Args[0])
	if strings.HasPrefix(name, "nginx: ") {
		name = "nginx"
	}
	switch name {
	case "pause":
		pause()
	case "nginx", "httpd":
		serve(name)
	case "nonewprivs":
		fmt.Printf("Effective uid: %d\n", os.Geteuid())
	case "pgrep":
		pgrep()
	case "ipcs":
		ipcs()
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
		if !strings.HasPrefix(os.Args[0], "nginx: ") {
			// The same pid and comm, with nginx's process title as argv[0].
			self, err := os.Executable()
			if err == nil {
				err = syscall.Exec(self, []string{"nginx: master process nginx -g daemon off;"}, os.Environ())
			}
			log.Fatalf("nginx: exec %s: %v", self, err)
		}
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

func pgrep() {
	if len(os.Args) != 2 {
		log.Fatal("usage: pgrep NAME")
	}
	found := false
	dirs, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, d := range dirs {
		comm, err := os.ReadFile(d)
		if err == nil && strings.TrimSpace(string(comm)) == os.Args[1] {
			fmt.Println(filepath.Base(filepath.Dir(d)))
			found = true
		}
	}
	if !found {
		os.Exit(1)
	}
}

func ipcs() {
	f, err := os.Open("/proc/sysvipc/shm")
	if err != nil {
		log.Fatalf("ipcs: %v", err)
	}
	defer f.Close()
	fmt.Println("------ Shared Memory Segments --------")
	fmt.Println("key        shmid      owner      perms      bytes      nattch")
	lines := bufio.NewScanner(f)
	lines.Scan() // the header
	for lines.Scan() {
		// key shmid perms size cpid lpid nattch uid ...
		c := strings.Fields(lines.Text())
		if len(c) < 8 {
			continue
		}
		key, _ := strconv.ParseInt(c[0], 10, 64)
		fmt.Printf("0x%08x %-10s %-10s %-10s %-10s %s\n", uint32(key), c[1], c[7], c[2], c[3], c[6])
	}
}
