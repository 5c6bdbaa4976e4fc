# Role-test lab on systemd-nspawn hosts (docs/lab.md). Needs root and: systemd-container debootstrap iptables
# iproute2 (apt). Lab hosts: inventories/lab (multi-node, 10.77.0.0/24); role scenarios use their own subnets.
.PHONY: lab-image lab-up lab-down lab-status lab-test lab-e2e lab-qualify lab-restore lab-upgrade release qualification-docs vagrant-validate

LAB_INVENTORY ?= inventories/lab

lab-image: ## Build (or reuse) the cached Debian 12 base image of the lab hosts
	lab/lab image

LAB_STATE := $(or $(CGT_LAB_STATE),/var/lib/cgt-lakehouse/lab)

lab-up: setup ## Boot the multi-node lab (inventories/lab), wait for SSH, generate its vault (secrets, lab CA, certs)
	$(UV) run --frozen lab/lab up $(LAB_INVENTORY)
	$(UV) run --frozen ansible-playbook -i $(LAB_INVENTORY) lab/vault.yml
	@echo "lab is up: uv run ansible -i $(LAB_INVENTORY) all -m ping"

lab-down: setup ## Stop the multi-node lab: no nspawn process, veth, bridge, NAT rule or lab vault is left
	$(UV) run --frozen lab/lab down $(LAB_INVENTORY)
	rm -rf $(LAB_STATE)/vault
	rm -f inventories/lab/group_vars/all/vault.yml

lab-e2e: setup lab-image ## Whole lakehouse on the multi-node lab: site.yml, user checks, restart, changed=0 (lab/e2e)
	$(UV) run --frozen lab/e2e $(LAB_E2E_ARGS)

# The lab with data (lab/e2e up to site, then its checks land an export set), then lab/restore; the lab comes down
# whatever the result.
lab-restore: setup lab-image ## Whole-site backup, tier hosts destroyed, restore onto fresh ones, compared (lab/restore)
	$(UV) run --frozen lab/e2e --keep --to site && $(UV) run --frozen lab/e2e --keep --from checks --to checks && \
	  $(UV) run --frozen lab/restore $(LAB_RESTORE_ARGS); rc=$$?; $(MAKE) --no-print-directory lab-down; exit $$rc

lab-qualify: setup lab-image ## IQ+OQ evidence package of the multi-node lab; a hand edit and a tampered package caught
	$(UV) run --frozen lab/qualify $(LAB_QUALIFY_ARGS)

qualification-docs: setup ## Render docs/qualification/{URS,FS,traceability}.md from its YAML
	$(UV) run --frozen lakehouse qualify docs

lab-status: ## List running lab hosts (all scenarios)
	@lab/lab status

# The minio scenario installs from the artifact bundle, so it is built (incrementally) first.
lab-test: setup bundle lab-image vagrant-validate ## molecule test for every roles/*/molecule/default (ROLES="a b" to pick)
	$(UV) run --frozen lab/test-roles $(ROLES)

vagrant-validate: ## Check the Vagrantfile (Debian's vagrant package)
	@if command -v vagrant >/dev/null; then vagrant validate --ignore-provider; \
	else echo "vagrant-validate: vagrant not installed (apt-get install vagrant)" >&2; exit 1; fi

lab-upgrade: setup lab-image ## Release N-1 installed with data, upgraded to this checkout, rolled back, checked (lab/upgrade)
	$(UV) run --frozen lab/upgrade $(LAB_UPGRADE_ARGS)

release: setup ## Tag VERSION (at COMMIT, default HEAD) and record it in releases.yml with BUNDLE's manifest sha256
	@test -n "$(VERSION)" || { echo "make release: give VERSION=MAJOR.MINOR.PATCH (and BUNDLE=dist/bundle of that commit)" >&2; exit 2; }
	$(UV) run --frozen lakehouse release record $(VERSION) --commit $(or $(COMMIT),HEAD) $(if $(BUNDLE),--bundle $(BUNDLE)) $(if $(NOTE),--note "$(NOTE)")
