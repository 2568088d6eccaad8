// meshshift-control-plane runs a loopback-only Kubernetes control plane in one
// process: embedded etcd, the upstream kube-apiserver and (optionally) the
// upstream kube-controller-manager. Progress and component logs go to stderr;
// once the plane is ready, the kubeconfig path is printed as the last stdout
// line. It runs in the foreground until SIGTERM/SIGINT.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	logsapi "k8s.io/component-base/logs/api/v1"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

type config struct {
	port, etcdPort, etcdPeerPort int
	dir, context                 string
	noCM                         bool
	apiserverArgs, cmArgs        []string
}

func main() {
	// Both components apply the same logging options; allow the second call.
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
	if err := run(parseFlags()); err != nil {
		fmt.Fprintln(os.Stderr, "meshshift-control-plane:", err)
		os.Exit(1)
	}
}

// parseFlags reads flags; each defaults to the env var used by start.sh.
func parseFlags() config {
	var c config
	// Own flag set: upstream packages (cAdvisor) fill the global one.
	fs := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	port := envInt("K8S_PORT", 6443)
	fs.IntVar(&c.port, "port", port, "kube-apiserver https port on 127.0.0.1 (env K8S_PORT)")
	fs.IntVar(&c.etcdPort, "etcd-port", envInt("ETCD_PORT", 0), "etcd client port (env ETCD_PORT; default 20000 + port % 20000)")
	fs.IntVar(&c.etcdPeerPort, "etcd-peer-port", envInt("ETCD_PEER_PORT", 0), "etcd peer port (env ETCD_PEER_PORT; default etcd-port + 20000)")
	fs.StringVar(&c.dir, "dir", os.Getenv("K8S_DIR"), "state dir (env K8S_DIR; default $XDG_CACHE_HOME/meshshift-control-plane/state/<port>)")
	fs.StringVar(&c.context, "context", envStr("K8S_CONTEXT", "local"), "kubeconfig context/cluster name (env K8S_CONTEXT)")
	fs.BoolVar(&c.noCM, "no-controller-manager", os.Getenv("K8S_NO_CM") == "1", "do not run kube-controller-manager (env K8S_NO_CM=1)")
	_ = fs.Parse(os.Args[1:]) // ExitOnError: exits on bad flags
	if c.etcdPort == 0 {
		c.etcdPort = 20000 + c.port%20000
	}
	if c.etcdPeerPort == 0 {
		c.etcdPeerPort = c.etcdPort + 20000
	}
	if c.dir == "" {
		cache, err := os.UserCacheDir() // $XDG_CACHE_HOME or $HOME/.cache
		if err != nil {
			cache = os.TempDir()
		}
		c.dir = filepath.Join(cache, "meshshift-control-plane", "state", strconv.Itoa(c.port))
	}
	c.apiserverArgs = strings.Fields(os.Getenv("K8S_APISERVER_ARGS"))
	c.cmArgs = strings.Fields(os.Getenv("K8S_CM_ARGS"))
	return c
}

func run(c config) error {
	start := time.Now()
	dir, err := filepath.Abs(c.dir)
	if err != nil {
		return err
	}
	pki := filepath.Join(dir, "pki")
	p := func(name string) string { return filepath.Join(pki, name) }
	token, err := ensurePKI(pki, fmt.Sprintf("meshshift-control-plane-ca-%d", c.port))
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}

	etcd, err := startEtcd(c, filepath.Join(dir, "etcd-data"))
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer func() {
		// Close waits for clients to hang up; the apiserver's may still be
		// connected. etcd's WAL makes an unclean exit safe, so bound the wait.
		closed := make(chan struct{})
		go func() { etcd.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(2 * time.Second):
		}
	}()
	logf("etcd ready on 127.0.0.1:%d (%s)", c.etcdPort, time.Since(start).Round(time.Millisecond))

	// NewAPIServerCommand installs the SIGTERM/SIGINT handler and shuts the
	// apiserver down gracefully on the first signal; its Execute then returns.
	api := apiserver.NewAPIServerCommand()
	api.SetArgs(append([]string{
		"--etcd-servers", fmt.Sprintf("http://127.0.0.1:%d", c.etcdPort),
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(c.port), "--cert-dir", pki,
		"--tls-cert-file", p("apiserver.crt"), "--tls-private-key-file", p("apiserver.key"),
		"--client-ca-file", p("ca.crt"), "--token-auth-file", p("tokens.csv"),
		"--authorization-mode", "RBAC", "--anonymous-auth=false",
		"--service-account-key-file", p("sa.pub"), "--service-account-signing-key-file", p("sa.key"),
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--api-audiences", "https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range", "10.96.0.0/12",
		// No kubelets: nothing would fill the "kubernetes" Service endpoints.
		"--endpoint-reconciler-type", "none",
		"--profiling=false",
	}, c.apiserverArgs...))
	apiDone := make(chan error, 1)
	go func() { apiDone <- api.Execute() }()

	// The apiserver handles the signal itself; this bounds the shutdown, also
	// for a signal that arrives while still starting up.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	stopping := make(chan struct{})
	go func() {
		<-sig
		close(stopping)
		time.Sleep(15 * time.Second)
		logf("shutdown took over 15s; exiting")
		os.Exit(1)
	}()

	client, err := newClient(p("ca.crt"), token)
	if err != nil {
		return err
	}
	base := fmt.Sprintf("https://127.0.0.1:%d", c.port)
	if err := waitOK(client, base+"/readyz", 3*time.Minute, apiDone); err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	logf("kube-apiserver ready on %s (%s)", base, time.Since(start).Round(time.Millisecond))

	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, c.context, base, pki, token); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}

	cmDone := make(chan error, 1)
	if !c.noCM {
		cm := controllermanager.NewControllerManagerCommand()
		cm.SetArgs(append([]string{
			"--kubeconfig", kubeconfig, "--secure-port", "0", "--leader-elect=false",
			"--service-account-private-key-file", p("sa.key"), "--root-ca-file", p("ca.crt"),
			"--cluster-signing-cert-file", p("ca.crt"), "--cluster-signing-key-file", p("ca.key"),
			"--use-service-account-credentials=false",
			// No nodes and no volumes: leave out the controllers that manage them
			// (the cloud controllers are not part of kube-controller-manager any more).
			"--controllers", "*,-node-ipam-controller,-node-lifecycle-controller," +
				"-persistentvolume-attach-detach-controller,-persistentvolume-binder-controller," +
				"-persistentvolume-expander-controller",
		}, c.cmArgs...))
		go func() { cmDone <- cm.Execute() }()
		// Pods are refused until the "default" ServiceAccount exists, so that
		// is what "ready" means for tests.
		err := waitOK(client, base+"/api/v1/namespaces/default/serviceaccounts/default", 2*time.Minute, cmDone)
		if err != nil {
			return fmt.Errorf("kube-controller-manager: %w", err)
		}
		logf("kube-controller-manager ready (%s)", time.Since(start).Round(time.Millisecond))
	}

	logf("ready in %s; pid %d; stop with SIGTERM", time.Since(start).Round(time.Millisecond), os.Getpid())
	fmt.Println(kubeconfig)

	select {
	case err := <-apiDone:
		select {
		case <-stopping: // it stopped because of the signal
		default:
			return fmt.Errorf("kube-apiserver exited: %v", err)
		}
	case err := <-cmDone:
		return fmt.Errorf("kube-controller-manager exited: %v", err)
	case <-stopping:
		// The apiserver stops listening at once but then waits for open
		// requests, e.g. the controller-manager's watches; a disposable
		// plane need not wait for them.
		select {
		case <-apiDone:
		case <-time.After(3 * time.Second):
		}
	}
	logf("stopping etcd")
	return nil
}

func startEtcd(c config, dataDir string) (*embed.Etcd, error) {
	u := func(port int) []url.URL { return []url.URL{{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", port)}} }
	cfg := embed.NewConfig()
	cfg.Name = "local"
	cfg.Dir = dataDir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = u(c.etcdPort), u(c.etcdPort)
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = u(c.etcdPeerPort), u(c.etcdPeerPort)
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "warn"
	// Test data is disposable; fsync dominates write latency on slow CI disks.
	cfg.UnsafeNoFsync = true
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, err
	case <-time.After(time.Minute):
		e.Close()
		return nil, errors.New("not ready after 1m")
	}
}

func newClient(caFile, token string) (*http.Client, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: bearer{token, &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	}, nil
}

type bearer struct {
	token string
	rt    http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.rt.RoundTrip(r)
}

// waitOK polls url until it answers 200, the component exits (done) or timeout.
func waitOK(c *http.Client, url string, timeout time.Duration, done <-chan error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	last := "no answer"
	for {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case err := <-done:
			return fmt.Errorf("exited before ready: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %s", url, timeout, last)
		case <-tick.C:
		}
	}
}

// writeKubeconfig writes a bearer-token context <name> (current) and a
// client-certificate context <name>-cert; users are named after the context
// so kubeconfigs of several planes merge cleanly.
func writeKubeconfig(path, name, server, pki, token string) error {
	read := func(f string) []byte { b, _ := os.ReadFile(filepath.Join(pki, f)); return b }
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: read("ca.crt")}
	kc.AuthInfos[name+"-admin"] = &clientcmdapi.AuthInfo{Token: token}
	kc.AuthInfos[name+"-admin-cert"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: read("admin.crt"), ClientKeyData: read("admin.key")}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name + "-admin", Namespace: "default"}
	kc.Contexts[name+"-cert"] = &clientcmdapi.Context{Cluster: name, AuthInfo: name + "-admin-cert", Namespace: "default"}
	kc.CurrentContext = name
	if err := clientcmd.WriteToFile(*kc, path+".tmp"); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[meshshift-control-plane] "+format+"\n", args...)
}

func envStr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return n
	}
	return def
}
