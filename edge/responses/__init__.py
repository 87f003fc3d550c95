"""Stored responses, `previous_response_id` chains and background runs, on any replica."""
