# The ALB alternative to cloudflared: an internet-facing Application Load
# Balancer terminating TLS and forwarding to the edge on port 8080. The edge
# still does routing and Basic Auth; the ALB adds TLS, health-based
# failover and an IP allow-list for the dashboards.
#
# The edge must trust the ALB's X-Forwarded-For: put the public subnets'
# CIDRs in routes.yaml's trusted_proxies and "X-Forwarded-For" in
# client_ip_headers.

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "HTTPS from anywhere to the load balancer"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  security_group_id = aws_security_group.alb.id
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  security_group_id = aws_security_group.alb.id
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 80
  to_port           = 80
  ip_protocol       = "tcp"
}

resource "aws_vpc_security_group_egress_rule" "alb_to_edge" {
  security_group_id            = aws_security_group.alb.id
  referenced_security_group_id = var.instance_security_group_id
  from_port                    = 8080
  to_port                      = 8080
  ip_protocol                  = "tcp"
}

# Only the load balancer reaches the edge's port.
resource "aws_vpc_security_group_ingress_rule" "edge_from_alb" {
  security_group_id            = var.instance_security_group_id
  referenced_security_group_id = aws_security_group.alb.id
  from_port                    = 8080
  to_port                      = 8080
  ip_protocol                  = "tcp"
}

resource "aws_lb" "edge" {
  name                       = var.name
  load_balancer_type         = "application"
  internal                   = false
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.public_subnet_ids
  drop_invalid_header_fields = true
  idle_timeout               = 120
}

resource "aws_lb_target_group" "edge" {
  name                 = "${var.name}-edge"
  port                 = 8080
  protocol             = "HTTP"
  vpc_id               = var.vpc_id
  target_type          = "instance"
  deregistration_delay = 30

  # /health is routed by the edge to the app's liveness endpoint: healthy
  # means both the edge and the app answer.
  health_check {
    path                = "/health"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_target_group_attachment" "edge" {
  for_each         = toset(var.instance_ids)
  target_group_arn = aws_lb_target_group.edge.arn
  target_id        = each.value
  port             = 8080
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.edge.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.edge.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.edge.arn
  }
}

# Dashboards from the admin networks go on to the edge (which asks for the
# password); from anywhere else they stop here.
resource "aws_lb_listener_rule" "dashboards_admin" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 10

  condition {
    path_pattern {
      values = ["/grafana*", "/prometheus*", "/alertmanager*", "/minio*"]
    }
  }
  condition {
    source_ip {
      values = var.admin_cidrs
    }
  }

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.edge.arn
  }
}

resource "aws_lb_listener_rule" "dashboards_deny" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 20

  condition {
    path_pattern {
      values = ["/grafana*", "/prometheus*", "/alertmanager*", "/minio*"]
    }
  }

  action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      message_body = "forbidden"
      status_code  = "403"
    }
  }
}
