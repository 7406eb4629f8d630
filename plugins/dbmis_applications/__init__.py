"""New-service applications (business expansion): Qt page and commands."""
