package envoy

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/airlockhq/airlock/config"
)

func sdsCluster(t *testing.T, cfg *config.Config) *clusterv3.Cluster {
	t.Helper()
	b, _ := parse(t, cfg)
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == ClusterSDS {
			return c
		}
	}
	t.Fatal("no SDS cluster")
	return nil
}

// TestBootstrapSDSOverUnixSocket: a unix:// listen.sds renders a static
// cluster on a pipe address, valid for Envoy's protos.
func TestBootstrapSDSOverUnixSocket(t *testing.T) {
	cfg := tlsConfig()
	cfg.Listen.SDS = "unix:///run/airlock/sds.sock"
	c := sdsCluster(t, cfg)
	if c.GetType() != clusterv3.Cluster_STATIC {
		t.Errorf("type = %v, want STATIC", c.GetType())
	}
	addr := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress()
	if addr.GetPipe().GetPath() != "/run/airlock/sds.sock" || addr.GetSocketAddress() != nil {
		t.Errorf("address = %v, want pipe /run/airlock/sds.sock", addr)
	}
	if c.GetTransportSocket() != nil {
		t.Errorf("a socket cluster has a transport socket: %v", c.GetTransportSocket())
	}
	if len(c.GetHealthChecks()) != 1 || c.GetHealthChecks()[0].GetGrpcHealthCheck() == nil {
		t.Errorf("health checks = %v", c.GetHealthChecks())
	}
	// The other clusters still dial TCP.
	b, _ := parse(t, cfg)
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == ClusterAuthz && c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue() != 9001 {
			t.Errorf("authz cluster changed: %v", c)
		}
	}
}

// TestBootstrapSDSOverMTLS: sds.tls_cert renders the matching upstream TLS
// context: Envoy's client certificate, the CA it trusts for airlock, the
// name it checks, ALPN h2.
func TestBootstrapSDSOverMTLS(t *testing.T) {
	for _, tc := range []struct {
		host, serverName, wantSAN, wantType, wantSNI string
	}{
		{"airlock.airlock-system.svc.cluster.local", "", "airlock.airlock-system.svc.cluster.local", "DNS", "airlock.airlock-system.svc.cluster.local"},
		{"10.0.0.7", "", "10.0.0.7", "IP_ADDRESS", ""},
		{"10.0.0.7", "sds.airlock.internal", "sds.airlock.internal", "DNS", "sds.airlock.internal"},
	} {
		cfg := tlsConfig()
		cfg.Envoy.AirlockHost = tc.host
		cfg.Envoy.SDSServerName = tc.serverName
		cfg.SDS = config.SDS{TLSCert: "/etc/airlock/sds/tls.crt", TLSKey: "/etc/airlock/sds/tls.key", ClientCA: "/etc/airlock/sds/ca.crt"}
		cfg.Envoy.SDSTLSCert, cfg.Envoy.SDSTLSKey, cfg.Envoy.SDSCA = "/etc/envoy/sds/tls.crt", "/etc/envoy/sds/tls.key", "/etc/envoy/sds/ca.crt"
		c := sdsCluster(t, cfg)
		var up tlsv3.UpstreamTlsContext
		if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(&up); err != nil {
			t.Fatalf("%s: transport socket: %v", tc.host, err)
		}
		ctc := up.GetCommonTlsContext()
		vc := ctc.GetValidationContext()
		if up.GetSni() != tc.wantSNI || strings.Join(ctc.GetAlpnProtocols(), ",") != "h2" ||
			ctc.GetTlsCertificates()[0].GetCertificateChain().GetFilename() != "/etc/envoy/sds/tls.crt" ||
			ctc.GetTlsCertificates()[0].GetPrivateKey().GetFilename() != "/etc/envoy/sds/tls.key" ||
			vc.GetTrustedCa().GetFilename() != "/etc/envoy/sds/ca.crt" ||
			vc.GetMatchTypedSubjectAltNames()[0].GetSanType().String() != tc.wantType ||
			vc.GetMatchTypedSubjectAltNames()[0].GetMatcher().GetExact() != tc.wantSAN {
			t.Errorf("%s: upstream TLS = %v", tc.host, &up)
		}
		if ctc.GetTlsParams().GetTlsMinimumProtocolVersion() != tlsv3.TlsParameters_TLSv1_2 {
			t.Errorf("%s: minimum TLS version %v", tc.host, ctc.GetTlsParams())
		}
	}
}

func TestBootstrapSDSMTLSNeedsEnvoysFiles(t *testing.T) {
	cfg := tlsConfig()
	cfg.SDS = config.SDS{TLSCert: "/c", TLSKey: "/k", ClientCA: "/ca"}
	cfg.Envoy.SDSTLSCert = "/etc/envoy/sds/tls.crt"
	_, err := Bootstrap(cfg)
	if err == nil || !strings.Contains(err.Error(), "envoy.sds_tls_key, envoy.sds_ca: required") {
		t.Fatalf("err = %v", err)
	}
	cfg = tlsConfig()
	cfg.Envoy.SDSCA = "/ca"
	if _, err := Bootstrap(cfg); err == nil || !strings.Contains(err.Error(), "envoy.sds_tls_cert: set only with sds.tls_cert") {
		t.Fatalf("err = %v", err)
	}
}
