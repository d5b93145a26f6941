package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"luamods/engine"
)

func registrationCmd() *cobra.Command {
	var src configSource
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "registration -c FILE [-o OUT]",
		Short: "Write the appservice registration the homeserver loads (fresh as_token and hs_token) and print how to add it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := src.load(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			reg, err := engine.NewRegistration(c)
			if err != nil {
				return err
			}
			body, err := reg.Marshal()
			if err != nil {
				return err
			}
			if out == "" && c.Homeserver != nil {
				out = c.Homeserver.Registration
			}
			if out == "" || out == "-" {
				_, err := cmd.OutOrStdout().Write(body)
				if err == nil {
					printRegistrationSteps(cmd.ErrOrStderr(), reg, "<the file you saved this to>", c)
				}
				return err
			}
			if err := writeNew(out, body, force); err != nil {
				return err
			}
			abs, _ := filepath.Abs(out)
			printRegistrationSteps(cmd.OutOrStdout(), reg, abs, c)
			return nil
		},
	}
	cmd.Flags().StringVarP(&src.path, "config", "c", "", "configuration file (default ./"+defaultConfigName+")")
	cmd.Flags().StringVarP(&out, "output", "o", "", "where to write it (default homeserver.registration of the configuration, else standard output)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing file (its tokens stop working)")
	return cmd
}

// writeNew writes a private file, refusing to replace one unless force:
// new tokens break the pairing with a homeserver that loaded the old ones.
func writeNew(path string, body []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if os.IsExist(err) {
		return fmt.Errorf("%s exists: its tokens may be in use; remove it or pass --force to make new ones", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// printRegistrationSteps tells the operator what to add where.
func printRegistrationSteps(w io.Writer, reg *engine.Registration, file string, c *engine.Config) {
	fmt.Fprintf(w, `Wrote the appservice registration %q (url %s, sender @%s:%s).

Add it to the homeserver, then restart the homeserver:
  Synapse (homeserver.yaml):
    app_service_config_files:
      - %s
  Dendrite (dendrite.yaml):
    app_service_api:
      config_files:
        - %s

`, reg.ID, reg.URL, reg.SenderLocalpart, c.ServerName, file, file)
	configured := ""
	if c.Homeserver != nil {
		configured, _ = filepath.Abs(c.Homeserver.Registration)
	}
	if configured != file {
		fmt.Fprintf(w, `And point luamods at it (%s):
  homeserver:
    url: http://127.0.0.1:8008   # the homeserver's client-server API
    registration: %s

`, c.Path, file)
	}
	fmt.Fprintln(w, "The homeserver must reach", reg.URL, "(luamods' listen); see docs/matrix.md.")
}
