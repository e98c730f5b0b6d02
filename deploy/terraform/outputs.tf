output "dns_name" {
  description = "Point the site's DNS (CNAME or alias) here."
  value       = aws_lb.edge.dns_name
}

output "zone_id" {
  description = "Hosted zone of the load balancer, for a Route 53 alias record."
  value       = aws_lb.edge.zone_id
}
