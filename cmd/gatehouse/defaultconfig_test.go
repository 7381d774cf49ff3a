package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/internal/demo"
)

// TestDefaultConfigIsTheDemo: without -config the gateway runs the demo of
// internal/demo, its keys, products, limits and owners exactly, each product
// on its route of the demo upstream with the demo upstream's credential; and
// that configuration reads back the same from the file format, so a file
// could hold it.
func TestDefaultConfigIsTheDemo(t *testing.T) {
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}

	var keys []auth.Key
	for _, k := range demo.Keys() {
		keys = append(keys, k.Key)
	}
	if got := cfg.keys(); !reflect.DeepEqual(got, keys) {
		t.Errorf("keys:\n%+v\nwant the demo's:\n%+v", got, keys)
	}
	var products []auth.Product
	for _, p := range demo.Products() {
		products = append(products, p.Product)
	}
	if got := cfg.products(); !reflect.DeepEqual(got, products) {
		t.Errorf("products:\n%+v\nwant the demo's:\n%+v", got, products)
	}
	if got := cfg.limits(); !reflect.DeepEqual(got, demo.Limits()) {
		t.Errorf("limits %+v, want the demo's %+v", got, demo.Limits())
	}
	if got := cfg.owners(); !reflect.DeepEqual(got, demo.Owners()) {
		t.Errorf("owners %+v, want the demo's %+v", got, demo.Owners())
	}

	g := &gateway{demoBase: "http://127.0.0.1:1"}
	for i, p := range demo.Products() {
		tg, err := g.target(cfg.Products[i])
		if err != nil {
			t.Fatalf("product %s: %v", p.Slug, err)
		}
		if tg.Name != p.Slug || tg.URL != "http://127.0.0.1:1"+p.Route || tg.HealthURL != "http://127.0.0.1:1"+p.HealthRoute ||
			!reflect.DeepEqual(tg.Header, http.Header{"Authorization": {"Bearer " + demo.Secret}}) {
			t.Errorf("product %s: upstream %s, health %s, header %v; want the demo upstream's %s and %s with its credential",
				p.Slug, tg.URL, tg.HealthURL, tg.Header, p.Route, p.HealthRoute)
		}
	}

	file, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	back, err := parseConfig(file)
	if err != nil {
		t.Fatalf("the built-in configuration, written as a file, is refused: %v\n%s", err, file)
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Errorf("the built-in configuration reads back from the file format as\n%+v\nnot\n%+v", back, cfg)
	}
}

// TestDocsConfigExample: the example of docs/configuration.md, "The
// configuration file", is a configuration the gateway accepts, and it shows
// every field of the format.
func TestDocsConfigExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## The configuration file\n")
	_, block, ok2 := strings.Cut(section, "\n```json\n")
	block, _, ok3 := strings.Cut(block, "\n```\n")
	if !ok || !ok2 || !ok3 {
		t.Fatal(`docs/configuration.md has no json block under "## The configuration file"`)
	}
	if _, err := parseConfig([]byte(block)); err != nil {
		t.Fatalf("docs/configuration.md's example is refused: %v", err)
	}
	var v any
	if err := json.Unmarshal([]byte(block), &v); err != nil {
		t.Fatal(err)
	}
	fields := fieldPaths(reflect.TypeFor[config](), "")
	shown := map[string]bool{}
	jsonPaths(v, "", fields, shown)
	var missing []string
	for _, f := range fields {
		if !shown[f] {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		t.Errorf("docs/configuration.md's example does not show %s", strings.Join(missing, ", "))
	}
}

// fieldPaths returns the JSON paths of every field of t: "keys[].id",
// "owners.*.per_day".
func fieldPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := prefix + name
		out = append(out, path)
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, fieldPaths(ft.Elem(), path+"[].")...)
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
			out = append(out, fieldPaths(ft.Elem(), path+".*.")...)
		case ft.Kind() == reflect.Struct && (ft.Name() == "" || ft.PkgPath() == t.PkgPath()): // not time.Time
			out = append(out, fieldPaths(ft, path+".")...)
		}
	}
	slices.Sort(out)
	return out
}

// jsonPaths records in shown the paths of v's object fields, in the form of
// fields (fieldPaths): an object is a map by name, "*", where fields has
// paths through one (owners), and a struct otherwise.
func jsonPaths(v any, prefix string, fields []string, shown map[string]bool) {
	obj, _ := v.(map[string]any)
	for k, e := range obj {
		path := prefix + k
		shown[path] = true
		switch e := e.(type) {
		case []any:
			for _, x := range e {
				jsonPaths(x, path+"[].", fields, shown)
			}
		case map[string]any:
			if slices.ContainsFunc(fields, func(f string) bool { return strings.HasPrefix(f, path+".*.") }) {
				for _, x := range e {
					jsonPaths(x, path+".*.", fields, shown)
				}
			} else {
				jsonPaths(e, path+".", fields, shown)
			}
		}
	}
}

// TestConfigCommand: gatehouse config prints the built-in configuration,
// indented, and what it prints is a configuration file that reads back as the
// built-in one.
func TestConfigCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"config"}, &stdout, &stderr, nil, nil); err != nil {
		t.Fatal(err)
	}
	want, err := json.MarshalIndent(demoConfig(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if got := stdout.String(); got != string(want)+"\n" {
		t.Errorf("gatehouse config printed\n%s\nwant\n%s", got, want)
	}
	if stderr.Len() > 0 {
		t.Errorf("gatehouse config wrote to stderr: %q", stderr.String())
	}
	back, err := parseConfig(stdout.Bytes())
	if err != nil {
		t.Fatalf("gatehouse config's output is refused as a configuration: %v", err)
	}
	if !reflect.DeepEqual(back, demoConfig()) {
		t.Errorf("gatehouse config's output reads back as\n%+v\nnot the built-in\n%+v", back, demoConfig())
	}

	stdout.Reset()
	err = run(context.Background(), []string{"config", "-v"}, &stdout, &stderr, nil, nil)
	if err == nil || err.Error() != "config takes no arguments" {
		t.Errorf("gatehouse config -v: error %v, want config takes no arguments", err)
	}
	if stdout.Len() > 0 {
		t.Errorf("gatehouse config -v printed %q", stdout.String())
	}
}

// TestConfigCommandPrintsOnlyWhatIsSet: gatehouse config leaves out every
// optional field the built-in configuration does not set (the upstream
// timeouts, max_body_bytes, a product's required), so that no "0s", 0 or null
// reads as "no timeout" or "no bound": its first product is exactly the demo's
// route, credential, health route and inputs, and no value anywhere is one of
// those zeros.
func TestConfigCommandPrintsOnlyWhatIsSet(t *testing.T) {
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"config"}, &stdout, io.Discard, nil, nil); err != nil {
		t.Fatal(err)
	}
	want := `    {
      "slug": "premium-calculator",
      "active": true,
      "required": [
        "Premium",
        "Age"
      ],
      "upstream": {
        "url": "demo:/calculate",
        "headers": {
          "Authorization": "Bearer ` + demo.Secret + `"
        },
        "health_url": "demo:/healthz"
      }
    },
`
	if !strings.Contains(stdout.String(), "\n  \"products\": [\n"+want) {
		t.Errorf("gatehouse config's first product is not exactly\n%s\nin\n%s", want, stdout.String())
	}
	var v any
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case nil:
			t.Errorf("gatehouse config prints %s: null", path)
		case string:
			if v == "0s" {
				t.Errorf("gatehouse config prints %s: \"0s\"", path)
			}
		case float64:
			if v == 0 {
				t.Errorf("gatehouse config prints %s: 0", path)
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		case map[string]any:
			for k, e := range v {
				walk(path+"."+k, e)
			}
		}
	}
	walk("", v)
}
