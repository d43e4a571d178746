package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// promAPI is the part of Prometheus's HTTP API the test reads.
type promAPI struct {
	base   string // http://127.0.0.1:PORT
	client *http.Client
}

func newPromAPI(addr string) promAPI {
	return promAPI{base: "http://" + addr, client: &http.Client{Timeout: 5 * time.Second}}
}

// sample is one element of an instant query's result.
type sample struct {
	Labels map[string]string
	Value  float64
}

// apiResponse is the envelope of every /api/v1 answer.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func (p promAPI) get(ctx context.Context, path string, params url.Values) (json.RawMessage, error) {
	u := p.base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("GET %s: %s: %w", u, resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("GET %s: %s: %s: %s", u, resp.Status, r.ErrorType, r.Error)
	}
	return r.Data, nil
}

// query runs an instant query at the current time and returns its samples;
// a scalar result is one sample without labels.
func (p promAPI) query(ctx context.Context, expr string) ([]sample, error) {
	d, err := apiGet[struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}](ctx, p, "/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	switch d.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(d.Result, &vec); err != nil {
			return nil, fmt.Errorf("query %q: vector: %w", expr, err)
		}
		out := make([]sample, 0, len(vec))
		for _, s := range vec {
			v, err := sampleValue(s.Value)
			if err != nil {
				return nil, fmt.Errorf("query %q: %w", expr, err)
			}
			out = append(out, sample{Labels: s.Metric, Value: v})
		}
		return out, nil
	case "scalar":
		var sc [2]any
		if err := json.Unmarshal(d.Result, &sc); err != nil {
			return nil, fmt.Errorf("query %q: scalar: %w", expr, err)
		}
		v, err := sampleValue(sc)
		if err != nil {
			return nil, fmt.Errorf("query %q: %w", expr, err)
		}
		return []sample{{Value: v}}, nil
	default:
		return nil, fmt.Errorf("query %q: result type %q, want vector or scalar", expr, d.ResultType)
	}
}

// sampleValue decodes [timestamp, "value"].
func sampleValue(v [2]any) (float64, error) {
	s, ok := v[1].(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", v[1])
	}
	return strconv.ParseFloat(s, 64)
}

// activeTarget is an entry of /api/v1/targets.
type activeTarget struct {
	Labels    map[string]string `json:"labels"`
	ScrapeURL string            `json:"scrapeUrl"`
	Health    string            `json:"health"`
	LastError string            `json:"lastError"`
}

func (p promAPI) activeTargets(ctx context.Context) ([]activeTarget, error) {
	d, err := apiGet[struct {
		ActiveTargets []activeTarget `json:"activeTargets"`
	}](ctx, p, "/api/v1/targets", url.Values{"state": {"active"}})
	return d.ActiveTargets, err
}

// ruleGroup is an entry of /api/v1/rules, the parts the test reads.
type ruleGroup struct {
	Name     string  `json:"name"`
	File     string  `json:"file"`
	Interval float64 `json:"interval"`
	Rules    []struct {
		Name   string `json:"name"`
		Type   string `json:"type"`
		Health string `json:"health"`
		State  string `json:"state"`
	} `json:"rules"`
}

func (p promAPI) ruleGroups(ctx context.Context) ([]ruleGroup, error) {
	d, err := apiGet[struct {
		Groups []ruleGroup `json:"groups"`
	}](ctx, p, "/api/v1/rules", nil)
	return d.Groups, err
}

// apiGet decodes the data of an /api/v1 answer into a T.
func apiGet[T any](ctx context.Context, p promAPI, path string, params url.Values) (T, error) {
	var out T
	data, err := p.get(ctx, path, params)
	if err != nil {
		return out, err
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return out, fmt.Errorf("decoding %s: %w", path, err)
	}
	return out, nil
}
