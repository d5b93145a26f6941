package engine

// inviteArgs are user_may_invite's arguments for the invite event of
// federated_user_may_invite: (inviter, invitee, room_id).
func inviteArgs(args []any) []any {
	ev, _ := first(args).(map[string]any)
	return []any{ev["sender"], ev["state_key"], ev["room_id"]}
}

func cb(name string, args []string, c Combiner, p Policy) *Callback {
	return &Callback{Name: name, Args: args, Combine: c, OnError: p}
}

// synapseCategories is Synapse's callback catalog (synapse-modules.md §3,
// code column).
func synapseCategories() []*Category {
	single := func(c *Callback) *Callback { c.SingleSlot = true; return c }
	keyed := func(c *Callback) *Callback { c.Keyed = true; return c }
	mutates := func(arg int, c *Callback) *Callback { c.Mutates = arg; return c }
	then := func(next string, args func([]any) []any, c *Callback) *Callback {
		c.Then, c.ThenArgs = next, args
		return c
	}
	return []*Category{
		{Name: "spam_checker", Callbacks: []*Callback{
			cb("check_event_for_spam", []string{"event"}, ruleB, Propagate),
			cb("should_drop_federated_event", []string{"event"}, ruleF, Propagate),
			cb("user_may_join_room", []string{"user_id", "room_id", "is_invited"}, ruleA, Propagate),
			cb("user_may_invite", []string{"inviter", "invitee", "room_id"}, ruleA, Propagate),
			then("spam_checker.user_may_invite", inviteArgs, cb("federated_user_may_invite", []string{"event"}, ruleA, Propagate)),
			cb("user_may_send_3pid_invite", []string{"inviter", "medium", "address", "room_id"}, ruleA, Propagate),
			cb("user_may_create_room", []string{"user_id", "room_config"}, ruleA, Propagate),
			cb("user_may_create_room_alias", []string{"user_id", "room_alias"}, ruleA, Propagate),
			cb("user_may_publish_room", []string{"user_id", "room_id"}, ruleA, Propagate),
			cb("user_may_send_state_event", []string{"user_id", "room_id", "event_type", "state_key", "content"}, ruleD, Propagate),
			cb("check_username_for_spam", []string{"user_profile", "requester_id"}, ruleF, Propagate),
			cb("check_registration_for_spam", []string{"email_threepid", "username", "request_info", "auth_provider_id"}, ruleG, Propagate),
			cb("check_media_file_for_spam", []string{"file_wrapper", "file_info"}, ruleC, Propagate),
			cb("check_login_for_spam", []string{"user_id", "device_id", "initial_display_name", "request_info", "auth_provider_id"}, ruleE, Propagate),
		}},
		{Name: "third_party_rules", Callbacks: []*Callback{
			cb("check_event_allowed", []string{"event", "state_events"}, checkEventAllowed, FailClosed),
			mutates(2, cb("on_create_room", []string{"requester", "request_content", "is_requester_admin"}, RunAll(), Forbid)),
			cb("check_threepid_can_be_invited", []string{"medium", "address", "state_events"}, FirstFalse(), FailOpen),
			cb("check_visibility_can_be_modified", []string{"room_id", "state_events", "new_visibility"}, FirstFalse(), FailOpen),
			cb("on_new_event", []string{"event", "state_events"}, RunAll(), FailOpen),
			cb("check_can_shutdown_room", []string{"user_id", "room_id"}, FirstFalse(), FailOpen),
			cb("check_can_deactivate_user", []string{"user_id", "by_admin"}, FirstFalse(), FailOpen),
			cb("on_profile_update", []string{"user_id", "new_profile", "by_admin", "deactivation"}, RunAll(), FailOpen),
			cb("on_user_deactivation_status_changed", []string{"user_id", "deactivated", "by_admin"}, RunAll(), FailOpen),
			cb("on_threepid_bind", []string{"user_id", "medium", "address"}, RunAll(), FailOpen),
			cb("on_add_user_third_party_identifier", []string{"user_id", "medium", "address"}, RunAll(), FailOpen),
			cb("on_remove_user_third_party_identifier", []string{"user_id", "medium", "address"}, RunAll(), FailOpen),
		}},
		{Name: "presence_router", BothOrNeither: true, Callbacks: []*Callback{
			cb("get_users_for_states", []string{"state_updates"}, presenceUsersForStates, FailOpen),
			cb("get_interested_users", []string{"user_id"}, presenceInterested, FailOpen),
		}},
		{Name: "account_validity", Callbacks: []*Callback{
			cb("is_user_expired", []string{"user_id"}, FirstNonNil(), Propagate),
			cb("on_user_registration", []string{"user_id"}, RunAll(), Propagate),
			cb("on_user_login", []string{"user_id", "auth_provider_type", "auth_provider_id"}, RunAll(), Propagate),
			single(cb("on_legacy_send_mail", []string{"user_id"}, SingleValue(), Propagate)),
			single(cb("on_legacy_renew", []string{"renewal_token"}, SingleValue(), Propagate)),
			single(cb("on_legacy_admin_request", []string{"request"}, SingleValue(), Propagate)),
		}},
		{Name: "password_auth_provider", Callbacks: []*Callback{
			keyed(cb("auth_checkers", []string{"username", "login_type", "login_dict"}, authTuple, FailOpen)),
			cb("check_3pid_auth", []string{"medium", "address", "password"}, authTuple, FailOpen),
			cb("on_logged_out", []string{"user_id", "device_id", "access_token"}, RunAll(), FailOpen),
			cb("get_username_for_registration", []string{"uia_results", "params"}, FirstString(), Propagate),
			cb("get_displayname_for_registration", []string{"uia_results", "params"}, FirstString(), Propagate),
			cb("is_3pid_allowed", []string{"medium", "address", "registration"}, firstFalse(true), Propagate),
		}},
		{Name: "background_update_controller", FirstModuleOnly: true, Callbacks: []*Callback{
			cb("on_update", []string{"update_name", "database_name", "one_shot"}, SingleValue(), Propagate),
			cb("default_batch_size", []string{"update_name", "database_name"}, SingleValue(), Propagate),
			cb("min_batch_size", []string{"update_name", "database_name"}, SingleValue(), Propagate),
		}},
		{Name: "account_data", Callbacks: []*Callback{
			cb("on_account_data_updated", []string{"user_id", "room_id", "account_data_type", "content"}, RunAll(), FailOpen),
		}},
		{Name: "add_extra_fields_to_unsigned_client_event", Callbacks: []*Callback{
			cb("add_field_to_unsigned_callback", []string{"event"}, MergeTables(), Propagate),
		}},
		{Name: "media_repository", Callbacks: []*Callback{
			cb("get_media_config_for_user", []string{"user_id"}, FirstTruthy(), Propagate),
			cb("is_user_allowed_to_upload_media_of_size", []string{"user_id", "size"}, firstFalsy, Propagate),
			cb("get_media_upload_limits_for_user", []string{"user_id"}, uploadLimits, Propagate),
			cb("on_media_upload_limit_exceeded", []string{"user_id", "limit", "sent_bytes", "attempted_bytes"}, RunAll(), Propagate),
		}},
		{Name: "ratelimit", Callbacks: []*Callback{
			cb("get_ratelimit_override_for_user", []string{"user_id", "limiter_name"}, FirstTruthy(), Propagate),
		}},
	}
}
