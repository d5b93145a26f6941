package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"luamods/engine"
)

func TestRegistrationCommand(t *testing.T) {
	dir := writeDir(t, map[string]string{"luamods.yaml": `server_name: example.com
listen: 127.0.0.1:9011
homeserver: {url: "http://127.0.0.1:8008", registration: reg.yaml}
modules: []
`})
	code, out, errOut := runCLI(dir, "", "registration", "-c", filepath.Join(dir, "luamods.yaml"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	path := filepath.Join(dir, "reg.yaml")
	for _, want := range []string{"app_service_config_files:\n      - " + path, "app_service_api:\n      config_files:\n        - " + path} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "point luamods at it") {
		t.Errorf("the configuration already names the file:\n%s", out)
	}
	reg, err := engine.LoadRegistration(path)
	if err != nil || reg.URL != "http://127.0.0.1:9011" {
		t.Fatalf("%+v %v", reg, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	// A second run keeps the tokens in use unless --force.
	code, _, errOut = runCLI(dir, "", "registration", "-c", filepath.Join(dir, "luamods.yaml"))
	if code == 0 || !strings.Contains(errOut, "--force") {
		t.Fatalf("overwrote: %d %s", code, errOut)
	}
	code, _, errOut = runCLI(dir, "", "registration", "-c", filepath.Join(dir, "luamods.yaml"), "--force")
	again, _ := engine.LoadRegistration(path)
	if code != 0 || again.HSToken == reg.HSToken {
		t.Fatalf("--force: %d %s", code, errOut)
	}
	// -o - writes to standard output, the steps to standard error.
	code, out, errOut = runCLI(dir, "", "registration", "-c", filepath.Join(dir, "luamods.yaml"), "-o", "-")
	if code != 0 || !strings.Contains(out, "hs_token: ") || !strings.Contains(errOut, "app_service_config_files") {
		t.Fatalf("-o -: %d\n%s\n%s", code, out, errOut)
	}
}
