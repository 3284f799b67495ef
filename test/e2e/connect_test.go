package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// snippet is one code block of docs/connect.md marked
// <!-- snippet: NAME [file=PATH] -->.
type snippet struct {
	name, file, code string
}

var snippetMark = regexp.MustCompile(`^<!-- snippet: (\S+)(?: file=(\S+))? -->$`)

// connectSnippets reads the marked code blocks of docs/connect.md.
func connectSnippets(t *testing.T) map[string]snippet {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs", "connect.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]snippet{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	var cur *snippet
	var code strings.Builder
	inBlock := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil:
			if m := snippetMark.FindStringSubmatch(line); m != nil {
				cur = &snippet{name: m[1], file: m[2]}
			}
		case !inBlock:
			if !strings.HasPrefix(line, "```") {
				t.Fatalf("docs/connect.md: snippet %s is not followed by a code block", cur.name)
			}
			inBlock = true
		case line == "```":
			cur.code = code.String()
			out[cur.name] = *cur
			cur, inBlock = nil, false
			code.Reset()
		default:
			code.WriteString(line)
			code.WriteByte('\n')
		}
	}
	return out
}

// TestConnectSnippetsAreTheExamples: a snippet backed by a file is that
// file, word for word, so what the tests run is what the guide shows.
func TestConnectSnippetsAreTheExamples(t *testing.T) {
	s := connectSnippets(t)
	for _, name := range []string{"gcloud-config", "gcloud-env", "curl", "go", "python", "node", "terraform"} {
		sn, ok := s[name]
		if !ok {
			t.Errorf("docs/connect.md has no snippet %s", name)
			continue
		}
		if sn.file == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, sn.file))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != sn.code {
			t.Errorf("docs/connect.md snippet %s differs from %s", name, sn.file)
		}
	}
}

// TestConnectSnippets runs the guide's snippets against airlock behind the
// Envoy stand-in with the shipped baseline, a fake Google Cloud behind it,
// with endpoint overrides on the gateway domain and a private CA. The
// network stand-in resolves every name to the gateway (HTTPS_PROXY, which
// each client honours, opens a CONNECT tunnel carrying its TLS untouched).
func TestConnectSnippets(t *testing.T) {
	s := connectSnippets(t)
	g := startTLSGateway(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	tok := g.iss.Mint(map[string]any{"sub": "alice", "email": "alice@acme.example", "groups": []string{"ai-agents"}})
	if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	proxy := "http://127.0.0.1:" + g.net.Port()
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AIRLOCK_DOMAIN=" + gatewayDomain, "AIRLOCK_TOKEN_FILE=" + tokenFile, "AIRLOCK_CA=" + g.ca.CertFile,
		"HTTPS_PROXY=" + proxy, "https_proxy=" + proxy, "NO_PROXY=", "no_proxy=",
	}
	gcloudEnv := append(append([]string(nil), env...),
		"CLOUDSDK_CONFIG="+filepath.Join(home, "gcloud"),
		"CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true", "CLOUDSDK_CORE_DISABLE_PROMPTS=1",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true", "CLOUDSDK_CORE_CHECK_GCE_METADATA=false",
		"CLOUDSDK_SURVEY_DISABLE_PROMPTS=true", "GCE_METADATA_HOST=127.0.0.1:9", "NO_GCE_CHECK=True",
		"CLOUDSDK_PROXY_TYPE=http", "CLOUDSDK_PROXY_ADDRESS=127.0.0.1", "CLOUDSDK_PROXY_PORT="+g.net.Port(),
	)
	run := func(t *testing.T, env []string, dir string, name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	want := func(t *testing.T, out string, parts ...string) {
		t.Helper()
		for _, p := range parts {
			if !strings.Contains(out, p) {
				t.Fatalf("output lacks %q:\n%s", p, out)
			}
		}
	}

	t.Run("gcloud environment", func(t *testing.T) {
		gcloudPath(t)
		out := run(t, gcloudEnv, home, "bash", "-ec", s["gcloud-env"].code+`
gcloud compute instances list --zones us-east1-b --project acme-prod --format 'value(name,status)'
gcloud storage ls gs://acme-dev-builds/release/
gcloud projects get-iam-policy acme-prod --format 'value(bindings.role)'
`)
		want(t, out, "web-1\tRUNNING", "gs://acme-dev-builds/release/notes.txt", "roles/viewer")
		names := strings.Join(g.net.Names(), " ")
		want(t, names, "compute."+gatewayDomain+":443", "storage."+gatewayDomain+":443", "cloudresourcemanager."+gatewayDomain+":443")
	})
	t.Run("gcloud config", func(t *testing.T) {
		gcloudPath(t)
		cfgEnv := append(append([]string(nil), gcloudEnv...), "CLOUDSDK_CONFIG="+filepath.Join(t.TempDir(), "gcloud"))
		out := run(t, cfgEnv, home, "bash", "-ec", s["gcloud-config"].code+`
gcloud compute instances describe web-1 --zone us-east1-b --project acme-prod --format 'value(name,status)'
`)
		want(t, out, "web-1\tRUNNING")
	})
	t.Run("curl", func(t *testing.T) {
		needTool(t, "curl")
		out := run(t, env, home, "bash", "-ec", s["curl"].code)
		want(t, out, `"compute#instanceList"`, `"web-1"`, "[MASKED")
	})
	t.Run("go", func(t *testing.T) {
		goEnv := append(append([]string(nil), env...), "SSL_CERT_FILE="+g.ca.CertFile,
			"GOCACHE="+goEnvValue(t, "GOCACHE"), "GOMODCACHE="+goEnvValue(t, "GOMODCACHE"), "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
		out := run(t, goEnv, repoRoot, "go", "run", "./docs/examples/connect-go")
		want(t, out, "instance web-1 RUNNING", "object release/notes.txt", "object release/v1.2.3.tar.gz")
	})
	t.Run("python", func(t *testing.T) {
		py := needTool(t, "python3")
		file := filepath.Join(repoRoot, s["python"].file)
		run(t, env, home, py, "-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())", file)
		if exec.Command(py, "-c", "import google.auth, google.cloud.storage").Run() != nil {
			t.Skip("the snippet parses; running it needs google-cloud-storage (pip install google-cloud-storage)")
		}
		out := run(t, append(env, "REQUESTS_CA_BUNDLE="+g.ca.CertFile), home, py, file)
		want(t, out, "object release/notes.txt")
	})
	t.Run("node", func(t *testing.T) {
		node := needTool(t, "node")
		file := filepath.Join(repoRoot, s["node"].file)
		run(t, env, home, node, "--check", file)
		nodeEnv := append(append([]string(nil), env...), "NODE_PATH="+nodePath(), "NODE_EXTRA_CA_CERTS="+g.ca.CertFile)
		probe := exec.Command(node, "-e", "require.resolve('@google-cloud/storage'); require.resolve('google-auth-library')")
		probe.Env = nodeEnv
		if probe.Run() != nil {
			t.Skip("the snippet parses; running it needs @google-cloud/storage (npm install -g @google-cloud/storage, or NODE_PATH)")
		}
		out := run(t, nodeEnv, home, node, file)
		want(t, out, "object release/notes.txt")
	})
	t.Run("terraform", func(t *testing.T) {
		tf, err := exec.LookPath("terraform")
		if err != nil {
			t.Skip("terraform is not installed")
		}
		file := filepath.Join(repoRoot, s["terraform"].file)
		run(t, env, home, tf, "fmt", "-check", "-diff", file)
		t.Log("terraform fmt passes; plan needs the hashicorp/google provider, which terraform init cannot fetch offline")
	})
}

func goEnvValue(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// nodePath is NODE_PATH with the global module folder added.
func nodePath() string {
	p := os.Getenv("NODE_PATH")
	if out, err := exec.Command("npm", "root", "-g").Output(); err == nil {
		if g := strings.TrimSpace(string(out)); g != "" {
			if p != "" {
				p += string(os.PathListSeparator)
			}
			p += g
		}
	}
	return p
}

// needTool is the path of a command a client snippet runs. Under CI=true a
// missing one fails the test (make test-deps installs it); elsewhere the
// snippet is skipped.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	pkg := name
	if name == "node" {
		pkg = "nodejs"
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (make test-deps installs it: apt-get install %s)", name, pkg)
	}
	t.Skipf("%s is not installed: apt-get install %s", name, pkg)
	return ""
}
