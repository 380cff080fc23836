package kafkasec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adclick/adclick/testing/testenv"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	scram := SASL{Mechanism: ScramSHA512, Username: "u", PasswordEnv: "X"}
	for _, tc := range []struct {
		name string
		sec  Security
		want string // "" = valid
	}{
		{"zero is plaintext", Security{}, ""},
		{"TLS with system roots", Security{TLS: TLS{Enabled: true}}, ""},
		{"SASL over TLS", Security{TLS: TLS{Enabled: true}, SASL: scram}, ""},
		{"SASL over plaintext, allowed", Security{SASL: SASL{Mechanism: Plain, Username: "u", PasswordFile: "f", AllowPlaintext: true}}, ""},
		{"SASL over plaintext", Security{SASL: scram}, "without TLS"},
		{"CA without TLS", Security{TLS: TLS{CAFile: "ca.pem"}}, "TLS is not enabled"},
		{"cert without key", Security{TLS: TLS{Enabled: true, CertFile: "c.pem"}}, "give both files or neither"},
		{"key without cert", Security{TLS: TLS{Enabled: true, KeyFile: "k.pem"}}, "give both files or neither"},
		{"unknown mechanism", Security{TLS: TLS{Enabled: true}, SASL: SASL{Mechanism: "GSSAPI", Username: "u", PasswordEnv: "X"}}, `unknown mechanism "GSSAPI"`},
		{"lower-case mechanism", Security{TLS: TLS{Enabled: true}, SASL: SASL{Mechanism: "plain", Username: "u", PasswordEnv: "X"}}, "unknown mechanism"},
		{"no username", Security{TLS: TLS{Enabled: true}, SASL: SASL{Mechanism: Plain, PasswordEnv: "X"}}, "no username"},
		{"no password source", Security{TLS: TLS{Enabled: true}, SASL: SASL{Mechanism: Plain, Username: "u"}}, "exactly one"},
		{"two password sources", Security{TLS: TLS{Enabled: true}, SASL: SASL{Mechanism: Plain, Username: "u", PasswordEnv: "X", PasswordFile: "f"}}, "exactly one"},
		{"user without mechanism", Security{TLS: TLS{Enabled: true}, SASL: SASL{Username: "u"}}, "no SASL mechanism"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.sec.Check()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("want an error mentioning %q, got %v", tc.want, err)
			}
		})
	}
}

func TestPassword(t *testing.T) {
	t.Setenv("KAFKASEC_TEST_PW", "from-env")
	for _, tc := range []struct {
		name, file, env, want, wantErr string
	}{
		{name: "file's first line", file: "p4ss word\nsecond line\n", want: "p4ss word"},
		{name: "CRLF", file: "pw\r\n", want: "pw"},
		{name: "no newline", file: "pw", want: "pw"},
		{name: "empty file", file: "\n", wantErr: "first line is empty"},
		{name: "environment", env: "KAFKASEC_TEST_PW", want: "from-env"},
		{name: "unset variable", env: "KAFKASEC_TEST_UNSET", wantErr: "KAFKASEC_TEST_UNSET is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := SASL{Mechanism: Plain, Username: "u", PasswordEnv: tc.env}
			if tc.env == "" {
				a.PasswordFile = writeFile(t, "pw", tc.file)
			}
			got, err := a.password()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want an error mentioning %q, got %q, %v", tc.wantErr, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// Every error of a misconfiguration names the file or variable, never what
// is in it.
func TestValidateErrorsHoldNoSecret(t *testing.T) {
	f := testenv.NewTLSFiles(t)
	key, err := os.ReadFile(f.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	keyBody := strings.Split(string(key), "\n")[1] // a line of the key's base64
	tlsOn := TLS{Enabled: true, CAFile: f.CA}
	for _, tc := range []struct {
		name    string
		sec     Security
		want    string
		secrets []string
	}{
		{"password file missing", Security{TLS: tlsOn, SASL: SASL{Mechanism: Plain, Username: "u", PasswordFile: "/nonexistent/pw"}},
			"/nonexistent/pw", nil},
		{"CA file is a key", Security{TLS: TLS{Enabled: true, CAFile: f.ClientKey}}, "no PEM certificate", []string{keyBody}},
		{"key does not match", Security{TLS: TLS{Enabled: true, CertFile: f.ServerCert, KeyFile: f.ClientKey}}, "client certificate", []string{keyBody}},
		{"key file is the certificate", Security{TLS: TLS{Enabled: true, CertFile: f.ClientCert, KeyFile: f.ClientCert}}, "client certificate", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.sec.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error mentioning %q, got %v", tc.want, err)
			}
			for _, s := range tc.secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("the error shows the secret: %v", err)
				}
			}
		})
	}
	good := Security{TLS: TLS{Enabled: true, CAFile: f.CA, CertFile: f.ClientCert, KeyFile: f.ClientKey},
		SASL: SASL{Mechanism: ScramSHA256, Username: "u", PasswordFile: writeFile(t, "pw", "pw\n")}}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid files: %v", err)
	}
}

// Security travels in DoFns as JSON: every field survives, and the encoding
// holds the password's file, not the password.
func TestJSONRoundTrip(t *testing.T) {
	pwFile := writeFile(t, "pw", "the-password-itself\n")
	in := Security{TLS: TLS{Enabled: true, CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", ServerName: "kafka.internal"},
		SASL: SASL{Mechanism: ScramSHA512, Username: "adclick", PasswordFile: pwFile, AllowPlaintext: true}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Security
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip: got %+v, want %+v", out, in)
	}
	if strings.Contains(string(b), "the-password-itself") || !strings.Contains(string(b), pwFile) {
		t.Fatalf("encoding %s", b)
	}
}

func TestString(t *testing.T) {
	s := Security{TLS: TLS{Enabled: true, CAFile: "ca.pem"}, SASL: SASL{Mechanism: Plain, Username: "u", PasswordFile: "pw"}}
	if got, want := s.String(), `TLS (CA ca.pem), SASL PLAIN as "u"`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got, want := (Security{}).String(), "plaintext, no SASL"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
