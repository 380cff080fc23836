package queryapi

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

type oaParam struct {
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

type oaOp struct {
	Parameters []oaParam           `json:"parameters"`
	Responses  map[string]any      `json:"responses"`
	Security   *[]map[string][]any `json:"security"`
}

type oaDoc struct {
	OpenAPI string                     `json:"openapi"`
	Paths   map[string]map[string]oaOp `json:"paths"`
}

func loadDoc(t *testing.T) oaDoc {
	t.Helper()
	var d oaDoc
	if err := json.Unmarshal(openAPIDoc, &d); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(d.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", d.OpenAPI)
	}
	return d
}

// TestOpenAPIMatchesRoutes keeps the document true: every route chi serves
// is documented with its method, path parameters, query parameters (name and
// required) and authentication, and the document describes nothing else.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	ts := newTestServer(t, nil)
	doc := loadDoc(t)

	served := map[string]bool{}
	err := chi.Walk(ts.mux, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served[strings.ToLower(method)+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for m := range ops {
			documented[m+" "+path] = true
		}
	}
	for k := range served {
		if !documented[k] {
			t.Errorf("route %s is served but not in openapi.json", k)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("openapi.json documents %s, which is not served", k)
		}
	}

	specs := map[string]route{}
	for _, rt := range ts.routes {
		specs[strings.ToLower(rt.method)+" "+rt.pattern] = rt
	}
	for k := range served {
		if _, ok := specs[k]; !ok {
			t.Errorf("route %s bypasses the query-parameter check", k)
		}
	}
	for path, ops := range doc.Paths {
		for m, op := range ops {
			rt, ok := specs[m+" "+path]
			if !ok {
				continue
			}
			var docQuery, codeQuery, docPath, codePath []string
			for _, p := range op.Parameters {
				switch p.In {
				case "query":
					docQuery = append(docQuery, p.Name+req(p.Required))
				case "path":
					if !p.Required {
						t.Errorf("%s %s: path parameter %s must be required", m, path, p.Name)
					}
					docPath = append(docPath, p.Name)
				default:
					t.Errorf("%s %s: parameter %s in %s is not supported", m, path, p.Name, p.In)
				}
			}
			for _, p := range rt.query {
				codeQuery = append(codeQuery, p.name+req(p.required))
			}
			for _, seg := range strings.Split(path, "/") {
				if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
					codePath = append(codePath, seg[1:len(seg)-1])
				}
			}
			if a, b := sorted(docQuery), sorted(codeQuery); a != b {
				t.Errorf("%s %s: query parameters documented [%s], served [%s]", m, path, a, b)
			}
			if a, b := sorted(docPath), sorted(codePath); a != b {
				t.Errorf("%s %s: path parameters documented [%s], in the pattern [%s]", m, path, a, b)
			}
			open := op.Security != nil && len(*op.Security) == 0
			if open != (rt.role == 0) {
				t.Errorf("%s %s: documented open=%v, served with role %v", m, path, open, rt.role)
			}
			if _, ok := op.Responses["200"]; !ok {
				if _, ok := op.Responses["202"]; !ok {
					t.Errorf("%s %s: no success response documented", m, path)
				}
			}
			if rt.role != 0 {
				for _, code := range []string{"400", "401", "403", "429"} {
					if _, ok := op.Responses[code]; !ok {
						t.Errorf("%s %s: response %s not documented", m, path, code)
					}
				}
			}
		}
	}
}

// TestDeclaredParametersAreAccepted checks the other direction for the
// handlers: a documented parameter is never refused as unknown.
func TestDeclaredParametersAreAccepted(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, rt := range ts.routes {
		for _, p := range rt.query {
			if _, err := queryParams(p.name+"=x", rt.query); err != nil && strings.Contains(err.Error(), "unknown") {
				t.Errorf("%s %s refuses its own parameter %s", rt.method, rt.pattern, p.name)
			}
		}
		if _, err := queryParams("undocumented=1", rt.query); err == nil || !strings.Contains(err.Error(), "unknown") {
			t.Errorf("%s %s accepts an undocumented parameter", rt.method, rt.pattern)
		}
	}
}

func req(required bool) string {
	if required {
		return "*"
	}
	return ""
}

func sorted(s []string) string {
	sort.Strings(s)
	return strings.Join(s, ",")
}

func TestOpenAPIServed(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do(t, "GET", "/openapi.json", "")
	if r.code != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", r.code, r.header.Get("Content-Type"))
	}
	var d oaDoc
	if err := json.Unmarshal(r.body, &d); err != nil || len(d.Paths) == 0 {
		t.Fatalf("served document: %v", err)
	}
}
