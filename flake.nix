{
  description = "mcb: reproducible Moodle codebases from one declarative site file";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAll (pkgs: {
        mcb = pkgs.rustPlatform.buildRustPackage {
          pname = "mcb";
          version = "0.1.0";
          src = ./.;
          cargoLock.lockFile = ./Cargo.lock;
          cargoBuildFlags = [ "-p" "mcb-cli" ];
          nativeBuildInputs = [ pkgs.installShellFiles pkgs.git ];
          # The integration tests build git upstreams and a PostgreSQL cluster; they run
          # in the project's CI, not in the sandbox.
          doCheck = false;
          postInstall = ''
            installShellCompletion --cmd mcb \
              --bash <($out/bin/mcb completions bash) \
              --zsh <($out/bin/mcb completions zsh) \
              --fish <($out/bin/mcb completions fish)
            $out/bin/mcb man > mcb.1
            installManPage mcb.1
          '';
          meta = {
            description = "Builds reproducible Moodle codebases from a declarative site file";
            mainProgram = "mcb";
          };
        };
        default = self.packages.${pkgs.system}.mcb;
      });

      apps = forAll (pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${pkgs.system}.mcb}/bin/mcb";
        };
      });

      # services.mcb-reconcile.sites.<name> = { siteFile = "/srv/sites/univ-prod/site.ron"; };
      nixosModules.reconcile = { config, lib, pkgs, ... }:
        let
          cfg = config.services.mcb-reconcile;
          mcb = self.packages.${pkgs.system}.mcb;
        in
        {
          options.services.mcb-reconcile = {
            store = lib.mkOption {
              type = lib.types.str;
              default = "/var/lib/mcb";
              description = "The mcb store every site shares.";
            };
            interval = lib.mkOption {
              type = lib.types.str;
              default = "*:0/15";
              description = "When reconcile runs (systemd OnCalendar).";
            };
            test = lib.mkOption {
              type = lib.types.bool;
              default = false;
              description = "Serve a new generation only once `mcb test` passes.";
            };
            sites = lib.mkOption {
              default = { };
              type = lib.types.attrsOf (lib.types.submodule {
                options.siteFile = lib.mkOption {
                  type = lib.types.str;
                  description = "The site file (its directory holds site.lock and result).";
                };
              });
            };
          };
          config = lib.mkIf (cfg.sites != { }) {
            users.users.mcb = { isSystemUser = true; group = "mcb"; home = cfg.store; };
            users.groups.mcb = { };
            systemd.services = lib.mapAttrs' (name: site:
              lib.nameValuePair "mcb-reconcile-${name}" {
                description = "mcb reconcile ${name}";
                after = [ "network-online.target" ];
                wants = [ "network-online.target" ];
                path = [ pkgs.git ];
                environment.MCB_STORE = cfg.store;
                serviceConfig = {
                  Type = "oneshot";
                  User = "mcb";
                  StateDirectory = "mcb";
                  ExecStart = "${mcb}/bin/mcb reconcile --json ${lib.optionalString cfg.test "--test "}${site.siteFile}";
                };
              }) cfg.sites;
            systemd.timers = lib.mapAttrs' (name: _:
              lib.nameValuePair "mcb-reconcile-${name}" {
                wantedBy = [ "timers.target" ];
                timerConfig = {
                  OnCalendar = cfg.interval;
                  RandomizedDelaySec = "120";
                  Persistent = true;
                };
              }) cfg.sites;
          };
        };
    };
}
