package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/airlockhq/airlock/config"
)

const devTokenUsage = `usage: airlock dev-token [--sub NAME] [--groups a,b] [--actor A] [flags]

Prints a token from the dev issuer of a running "airlock serve" in local-trial
mode (the issuer answers on loopback only).

Exit status: 0 printed, 1 the server did not give one, 2 usage error.
`

func runDevToken(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl := newFlagSet("dev-token", devTokenUsage, stderr)
	server := fl.String("server", "", "URL of a running `airlock serve` in dev mode (default: listen.http of --config, else http://127.0.0.1:8080)")
	cfgPath := fl.String("config", "", "read the server address from this airlock.yaml")
	sub := fl.String("sub", "alice", "subject of the token")
	email := fl.String("email", "", "email claim")
	groups := fl.String("groups", "", "comma-separated groups")
	actor := fl.String("actor", "", "RFC 8693 act.sub: the agent acting for the subject")
	ttl := fl.Duration("ttl", time.Hour, "lifetime of the token")
	pos, code, ok := parseFlags(fl, args, stdout)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "airlock dev-token: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	addr, err := serverAddr(*server, *cfgPath, "127.0.0.1:8080", func(c *config.Config) string { return c.Listen.HTTP })
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	*server = addr
	q := url.Values{"sub": {*sub}, "ttl": {ttl.String()}}
	if *email != "" {
		q.Set("email", *email)
	}
	if *groups != "" {
		q.Set("groups", *groups)
	}
	if *actor != "" {
		q.Set("actor", *actor)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(*server, "/")+"/dev/token?"+q.Encode(), nil)
	if err != nil {
		errorf(stderr, "dev-token", "%v", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "airlock dev-token: is `airlock serve` (dev mode, no --config) running at %s? %v\n", *server, err)
		return 1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out struct {
		Token string `json:"access_token"`
		Error string `json:"error"`
	}
	_ = json.Unmarshal(b, &out)
	if resp.StatusCode != http.StatusOK || out.Token == "" {
		msg := out.Error
		if msg == "" {
			msg = strings.TrimSpace(string(b))
		}
		if resp.StatusCode == http.StatusNotFound {
			msg = "the server has no dev issuer (it runs with a config file that leaves identity.dev off)"
		}
		fmt.Fprintf(stderr, "airlock dev-token: %s (HTTP %d)\n", msg, resp.StatusCode)
		return 1
	}
	fmt.Fprintln(stdout, out.Token)
	return 0
}

// serverAddr is the address a client command talks to: --server, else the
// listen address pick takes from --config, else def.
func serverAddr(server, cfgPath, def string, pick func(*config.Config) string) (string, error) {
	if server != "" {
		return server, nil
	}
	if cfgPath == "" {
		return def, nil
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return "", err
	}
	return pick(cfg), nil
}
