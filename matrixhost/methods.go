package matrixhost

// methodTable maps every api method (luaapi.HostMethods and the managers'
// "<manager>.<method>") to its implementation.
func (h *Host) methodTable() map[string]method {
	return map[string]method{
		"get_room_state":                      h.getRoomState,
		"get_state_events_in_room":            h.getStateEventsInRoom,
		"check_user_exists":                   h.checkUserExists,
		"check_username":                      h.checkUsername,
		"get_userinfo_by_id":                  h.getUserinfoByID,
		"is_user_admin":                       h.isUserAdmin,
		"set_user_admin":                      h.setUserAdmin,
		"get_profile_for_user":                h.getProfileForUser,
		"set_displayname":                     h.setDisplayname,
		"get_threepids_for_user":              h.getThreepidsForUser,
		"get_user_ip_and_agents":              h.getUserIPAndAgents,
		"register_user":                       h.registerUser,
		"create_login_token":                  h.createLoginToken,
		"invalidate_access_token":             h.invalidateAccessToken,
		"record_user_external_id":             h.recordUserExternalID,
		"update_room_membership":              h.updateRoomMembership,
		"create_and_send_event_into_room":     h.createAndSendEventIntoRoom,
		"create_room":                         h.createRoom,
		"delete_room":                         h.deleteRoom,
		"lookup_room_alias":                   h.lookupRoomAlias,
		"get_canonical_room_alias":            h.getCanonicalRoomAlias,
		"send_local_online_presence_to":       unsupported("forcing a presence initial sync happens inside the presence writer (no endpoint)"),
		"set_presence_for_users":              h.setPresenceForUsers,
		"send_mail":                           unsupported("the homeserver's SMTP sender has no endpoint (send mail from the module with an SMTP relay's HTTP API)"),
		"send_http_push_notification":         unsupported("the homeserver's pushers have no endpoint to trigger"),
		"check_push_rule_actions":             h.checkPushRuleActions,
		"set_push_rule_action":                h.setPushRuleAction,
		"get_monthly_active_users_by_service": unsupported("monthly active users by appservice have no endpoint"),

		"account_data_manager.get_global":                            h.getGlobalAccountData,
		"account_data_manager.put_global":                            h.putGlobalAccountData,
		"public_room_list_manager.room_is_in_public_room_list":       h.roomIsInPublicRoomList,
		"public_room_list_manager.add_room_to_public_room_list":      h.setRoomVisibility("public"),
		"public_room_list_manager.remove_room_from_public_room_list": h.setRoomVisibility("private"),

		"get_user_by_req": h.getUserByReq,
	}
}
