package rtsp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
)

// authServer is a gortsplib server that demands credentials and, once they are right,
// answers 404: enough to see the client authenticate (or not) without a stream.
type authServer struct{ user, pass string }

func (h *authServer) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !ctx.Conn.VerifyCredentials(ctx.Request, h.user, h.pass) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
}

// startAuthServer serves on 127.0.0.1:0, over TLS when cert is not nil.
func startAuthServer(t *testing.T, cert *tls.Certificate) string {
	t.Helper()
	srv := &gortsplib.Server{Handler: &authServer{user: "robot", pass: "s3cret!"}, RTSPAddress: "127.0.0.1:0"}
	scheme := "rtsp"
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
		scheme = "rtsps"
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return scheme + "://" + srv.NetListener().Addr().String() + "/cam"
}

// selfSigned makes a certificate for 127.0.0.1 and writes it as PEM for tls_ca_file.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test camera"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "camera.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}

func TestCredentialsAndTLS(t *testing.T) {
	checkLeaks(t)
	cert, caFile := selfSigned(t)
	plain := startAuthServer(t, nil)
	secure := startAuthServer(t, &cert)
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte("s3cret!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EDGEDEPTH_TEST_CAMERA_PASSWORD", "s3cret!")
	withUser := func(u, userinfo string) string { return strings.Replace(u, "://", "://"+userinfo+"@", 1) }

	tests := []struct {
		name     string
		cfg      Config
		accepted bool   // the server took the credentials (and answered 404)
		want     string // in the error otherwise
	}{
		{"no credentials", Config{URL: plain}, false, "401"},
		{"wrong password in url", Config{URL: withUser(plain, "robot:guess")}, false, "401"},
		{"password in url", Config{URL: withUser(plain, "robot:s3cret%21")}, true, ""},
		{"password file", Config{URL: plain, Username: "robot", PasswordFile: pwFile}, true, ""},
		{"password env", Config{URL: plain, Username: "robot", PasswordEnv: "EDGEDEPTH_TEST_CAMERA_PASSWORD"}, true, ""},
		{"missing password env", Config{URL: plain, Username: "robot", PasswordEnv: "EDGEDEPTH_TEST_NO_SUCH_VAR"}, false, "EDGEDEPTH_TEST_NO_SUCH_VAR is not set"},
		{"rtsps self-signed refused", Config{URL: withUser(secure, "robot:s3cret!")}, false, "certificate"},
		{"rtsps skip verify", Config{URL: withUser(secure, "robot:s3cret!"), TLSInsecureSkipVerify: true}, true, ""},
		{"rtsps ca file", Config{URL: secure, Username: "robot", PasswordFile: pwFile, TLSCAFile: caFile}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Transport, tt.cfg.ReadTimeout = TransportTCP, 3*time.Second
			cam := startCamera(t, tt.cfg)
			err, _ := cam.waitErr(t, 10*time.Second)
			if err == nil {
				t.Fatal("Run returned nil")
			}
			t.Log(err)
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows the password: %v", err)
			}
			if !strings.Contains(err.Error(), "camera left") {
				t.Errorf("error does not name the camera: %v", err)
			}
			if tt.accepted {
				if errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "404") {
					t.Errorf("credentials not accepted: %v", err)
				}
				return
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
			if tt.want == "401" && !errors.Is(err, ErrUnauthorized) {
				t.Errorf("error %q does not wrap ErrUnauthorized", err)
			}
		})
	}
}
