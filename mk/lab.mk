# Role-test lab on systemd-nspawn hosts (docs/lab.md). Needs root and: systemd-container debootstrap iptables
# iproute2 (apt). Lab hosts: inventories/lab (multi-node, 10.77.0.0/24); role scenarios use their own subnets.
.PHONY: lab-image lab-up lab-down lab-status lab-test lab-fullstack vagrant-validate

LAB_INVENTORY ?= inventories/lab

lab-image: ## Build (or reuse) the cached Debian 12 base image of the lab hosts
	lab/lab image

lab-up: setup ## Boot the multi-node lab (inventories/lab) and wait for SSH on every host
	$(UV) run --frozen lab/lab up $(LAB_INVENTORY)
	@echo "lab is up: uv run ansible -i $(LAB_INVENTORY) all -m ping"

lab-down: setup ## Stop the multi-node lab: no nspawn process, veth, bridge or NAT rule is left
	$(UV) run --frozen lab/lab down $(LAB_INVENTORY)

lab-status: ## List running lab hosts (all scenarios)
	@lab/lab status

# The minio scenario installs from the artifact bundle, so it is built (incrementally) first.
lab-test: setup bundle lab-image vagrant-validate ## molecule test for every roles/*/molecule/default (ROLES="a b" to pick)
	$(UV) run --frozen lab/test-roles $(ROLES)

vagrant-validate: ## Check the Vagrantfile (Debian's vagrant package)
	@if command -v vagrant >/dev/null; then vagrant validate --ignore-provider; \
	else echo "vagrant-validate: vagrant not installed (apt-get install vagrant)" >&2; exit 1; fi

lab-fullstack: setup lab-image ## molecule full-stack scenario: playbooks/site.yml on one host per tier (10.77.1.0/24)
	$(UV) run --frozen molecule test -s full-stack
