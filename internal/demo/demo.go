// Package demo is the demo that `go run ./example` serves, and cmd/gatehouse
// too when it is given no -config: the products, the keys and their limits
// (written here only), and the demo upstream, a stand-in for the product
// service behind the gateway, whose calculation the load tool also serves
// bare.
package demo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Upstream is the product service that the demo products' calls are
// forwarded to (see [Product.Route]). It stands in for what an administrator runs
// behind the gateway, with one route per behaviour the walkthrough shows:
//
//	POST /calculate     a success: outputs computed from the inputs (?format=pdf|both)
//	     /unauthorized  401, as an upstream whose credentials were rotated (→ 502)
//	     /overloaded    503 with Retry-After: 7, as a busy upstream (→ 503)
//	     /broken        500, as an upstream with a bug (→ 500)
//	GET  /healthz       200
//
// It checks the upstream credential the gateway adds, so a forwarded request
// that lost it is visible as a 401. The three failing routes answer every
// method alike: a health probe (a GET) of one fails as its calls do, as it
// would of a real upstream in that state.
func Upstream(secret string) http.Handler {
	mux := http.NewServeMux()
	authorized := func(next http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+secret {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(`{"error":"demo upstream: bad credentials"}`))
				return
			}
			next(w, r)
		}
	}
	mux.HandleFunc("POST /calculate", authorized(Calculate))
	mux.HandleFunc("/unauthorized", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"token expired for account 4411 (internal detail)"}`))
	})
	mux.HandleFunc("/overloaded", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		http.Error(w, "overloaded: queue depth 9000", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "stack trace: nil pointer at calc.go:42", http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	})
	return mux
}

// Calculate answers the demo product: a premium quote from Premium and Age,
// as JSON, or as a PDF with ?format=pdf.
func Calculate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Inputs map[string]any `json:"inputs"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"inputs must be JSON"}`))
		return
	}
	premium, ok1 := body.Inputs["Premium"].(float64)
	age, ok2 := body.Inputs["Age"].(float64)
	if !ok1 || !ok2 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"Premium and Age must be numbers"}`))
		return
	}
	factor := 1.0
	if age >= 50 {
		factor = 1.25
	}
	outputs := map[string]any{"AnnualPremium": premium * factor, "MonthlyPremium": premium * factor / 12}

	format := r.URL.Query().Get("format")
	if format == "pdf" {
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("Content-Disposition", `attachment; filename="quote.pdf"`)
		w.Write(quotePDF(fmt.Sprintf("Annual premium: %.2f", premium*factor)))
		return
	}
	resp := map[string]any{"status": 200, "response_data": map[string]any{"outputs": outputs}}
	if format == "both" {
		resp["response_data"].(map[string]any)["pdf_url"] = "/quotes/demo.pdf"
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// demoPDF returns a minimal one-page PDF that shows line.
func quotePDF(line string) []byte {
	line = strings.NewReplacer(`\`, `\\`, `(`, `\(`, `)`, `\)`).Replace(line)
	content := fmt.Sprintf("BT /F1 18 Tf 72 720 Td (%s) Tj ET", line)
	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b strings.Builder
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objects))
	for i, o := range objects {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objects)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, xref)
	return []byte(b.String())
}
