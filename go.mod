module selfhost.dev/edgeapp

go 1.26
