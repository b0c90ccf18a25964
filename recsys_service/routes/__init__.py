"""The routes of the service, one router per concern; ``create_app`` includes them all."""
