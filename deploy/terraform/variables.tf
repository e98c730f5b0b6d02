variable "region" {
  description = "AWS region of the VPC."
  type        = string
}

variable "name" {
  description = "Prefix for every resource name."
  type        = string
  default     = "edgeapp"
}

variable "vpc_id" {
  description = "VPC holding the instances that run the edge."
  type        = string
}

variable "public_subnet_ids" {
  description = "At least two public subnets, in different AZs, for the load balancer."
  type        = list(string)
}

variable "instance_ids" {
  description = "EC2 instances running the edge on port 8080 (deploy/systemd/edge.service)."
  type        = list(string)
}

variable "instance_security_group_id" {
  description = "Security group of those instances; the edge's port is opened to the load balancer only."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for the HTTPS listener."
  type        = string
}

variable "admin_cidrs" {
  description = "Client networks allowed to reach the dashboards (the edge's Basic Auth still applies)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}
