"""Blue/green deployment, lease/fencing, rollback; built by the commander issue."""
