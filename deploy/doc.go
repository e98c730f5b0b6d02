// Package deploy holds the stack's deployment files (docker-compose.yml at
// the repository root, and Prometheus, Alertmanager, Grafana, Loki,
// promtail, blackbox, cloudflared, systemd and Terraform configs here).
// It has no code; its tests check every config with its own tool
// (promtool, amtool, terraform fmt, edge validate, the real Prometheus and
// Alertmanager) and the compose file's structure.
package deploy
